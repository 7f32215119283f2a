"""README 'Your own ntuples': its example configs and commands, run exactly as printed.

Files in each layout are written from the session's Pythia jets under the names the README
configs use; `jettag check-config` and `jettag ingest` run as the README shows them, and the
Snakefile's pre-run check is exercised with `snakemake -n`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jettag.io.canonical import read_all
from tests.conftest import REPO, copy_workflow
from tests.ntuple_layouts import write_atlas_root, write_atlas_tdd_h5, write_jetclass_root

README = (REPO / "README.md").read_text()
SECTION = README[README.index("## Your own ntuples") : README.index("## Running on a cluster")]
CONFIGS = {
    match.group(1): match.group(0).removeprefix("```yaml\n")
    for match in re.finditer(r"```yaml\n# (my_\w+\.yaml):.*?(?=```)", SECTION, re.DOTALL)
}
COMMANDS = [
    line.strip()
    for block in re.findall(r"```bash\n(.*?)```", SECTION, re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]
WRITERS = {
    "ntuples/user.tdd.h5": write_atlas_tdd_h5,
    "ntuples/jetclass.root": write_jetclass_root,
    "ntuples/user.ntuple.root": write_atlas_root,
}


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A README command line, as written."""
    return subprocess.run(shlex.split(command), cwd=cwd, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def workdir(ingested, tmp_path_factory) -> Path:
    """A directory with the README's configs and an ntuple for each, from the same jets."""
    jets, tracks = read_all(ingested)
    keep = np.isin(jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    jets, tracks = jets[keep], tracks[keep]
    directory = tmp_path_factory.mktemp("readme_ntuples")
    (directory / "ntuples").mkdir()
    for name, text in CONFIGS.items():
        (directory / name).write_text(text)
    for path, writer in WRITERS.items():
        writer(directory / path, jets, tracks)
    return directory


def test_readme_has_three_complete_configs_and_two_commands():
    assert sorted(CONFIGS) == ["my_atlas_root.yaml", "my_atlas_tdd.yaml", "my_jetclass.yaml"]
    assert [c.split()[:2] for c in COMMANDS] == [["jettag", "check-config"], ["jettag", "ingest"]]


def test_readme_commands_as_printed(workdir, ingested):
    for command in COMMANDS:
        result = run(command, workdir)
        assert result.returncode == 0, (command, result.stderr)
        if "check-config" in command:
            assert "# sample atlas, ntuples/user.tdd.h5:" in result.stdout
            assert "#   jet_pt <- 'pt_btagJes' [MeV]" in result.stdout
            assert "#   trk_pt = sin(theta) / |q/p| (from trk_qOverP, trk_theta)" in result.stdout
            assert "#   jet_phi: absent (not in the file, not derivable)" in result.stdout
    jets, tracks = read_all(workdir / "data/ingested/atlas.h5")
    ref_jets, ref_tracks = read_all(ingested)
    keep = np.isin(ref_jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    np.testing.assert_allclose(jets["pt"], ref_jets["pt"][keep], rtol=1e-6)
    np.testing.assert_allclose(tracks["d0Uncertainty"], ref_tracks["d0Uncertainty"][keep],
                               rtol=1e-5, atol=1e-8)  # fmt: skip


@pytest.mark.parametrize(("config_file", "sample", "path"), [
    ("my_jetclass.yaml", "jetclass", "ntuples/jetclass.root"),
    ("my_atlas_root.yaml", "atlas", "ntuples/user.ntuple.root"),
])  # fmt: skip
def test_the_other_readme_configs_check_and_ingest(workdir, config_file, sample, path):
    checked = run(f"jettag check-config --config {config_file}", workdir)
    assert checked.returncode == 0, checked.stderr
    assert f"# sample {sample}, {path}:" in checked.stdout
    out = f"data/ingested/{sample}_{Path(config_file).stem}.h5"
    ingested = run(f"jettag ingest --config {config_file} --sample {sample} --output {out} {path}",
                   workdir)  # fmt: skip
    assert ingested.returncode == 0, ingested.stderr
    jets, _ = read_all(workdir / out)
    assert set(np.unique(jets["HadronConeExclTruthLabelID"])) == {0, 4, 5}


def test_snakemake_checks_input_files_before_any_job(workdir):
    copy_workflow(workdir)
    planned = run("snakemake -n --cores 2 --configfile my_jetclass.yaml", workdir)
    assert planned.returncode == 0, planned.stderr
    assert "rule ingest" in planned.stdout
    # JetClass has no hit counts: the default track inputs would be constant placeholders
    text = (workdir / "my_jetclass.yaml").read_text()
    without_prepare = text[: text.index("prepare:")] + text[text.index("models:") :]
    (workdir / "hits.yaml").write_text(without_prepare)
    refused = run("snakemake -n --cores 2 --configfile hits.yaml", workdir)
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr  # snakemake prints a WorkflowError to stdout
    assert "prepare.track_inputs ['numberOfPixelHits'" in message
    assert "sample 'jetclass' does not provide them" in message
    assert "rule ingest" not in message  # refused before planning any job
    text = (workdir / "my_atlas_root.yaml").read_text()
    (workdir / "typo.yaml").write_text(text.replace("jet_trk_d0\n", "jet_trk_dzero\n"))
    refused = run("jettag check-config --config typo.yaml", workdir)
    assert refused.returncode == 2
    assert "samples.atlas.branches.trk_d0 = 'jet_trk_dzero' is not in tree" in refused.stderr
