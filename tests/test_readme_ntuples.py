"""README 'Your own ntuples': its example configs and commands, run exactly as printed.

Files in each layout are written from the session's Pythia jets under the names the README
configs use; `jettag check-config` and `jettag ingest` run as the README shows them, and the
Snakefile's pre-run check is exercised with `snakemake -n`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from jettag import config as cfg
from jettag.io.canonical import read_all
from jettag.io.ingest import ingest_sample
from jettag.simulate.generate import generate_shard
from tests.conftest import REPO, SMALL_EVENTS, copy_workflow
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
JETCLASS = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]


def write_jetclass_ten_root(path: Path, jets: np.ndarray, tracks: np.ndarray) -> Path:
    """A JetClass file with its ten one-hot labels: b jets as Hbb, c as Hcc, light as QCD."""
    label = jets["HadronConeExclTruthLabelID"]
    index = np.select([label == 5, label == 4], [1, 2], 0)
    one_hot = {f"label_{name}": index == k for k, name in enumerate(JETCLASS)}
    return write_jetclass_root(path, jets, tracks, one_hot=one_hot)


WRITERS = {
    "ntuples/user.tdd.h5": write_atlas_tdd_h5,
    "ntuples/jetclass.root": write_jetclass_root,
    "ntuples/jetclass_ten.root": write_jetclass_ten_root,
    "ntuples/user.ntuple.root": write_atlas_root,
}


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A README command line, as written."""
    return subprocess.run(shlex.split(command), cwd=cwd, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def two_shards(ingested, config, tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    """The session's shard and one more (enough training jets for a default batch)."""
    directory = tmp_path_factory.mktemp("second_shard")
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    sample = cfg.sample_config(config, "ttbar")
    generate_shard("ttbar", sample, simulation, config["seed"], 1, directory / "1.root",
                   n_events=SMALL_EVENTS)  # fmt: skip
    ingest = cfg.section(cfg.IngestConfig, config["ingest"])
    ingest_sample(cfg.reading_config(config, "ttbar"), [directory / "1.root"], ingest,
                  directory / "1.h5", "ttbar")  # fmt: skip
    parts = [read_all(ingested), read_all(directory / "1.h5")]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.fixture(scope="module")
def workdir(two_shards, tmp_path_factory) -> Path:
    """A directory with the README's configs and an ntuple for each, from the same jets."""
    jets, tracks = two_shards
    keep = np.isin(jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    jets, tracks = jets[keep], tracks[keep]
    directory = tmp_path_factory.mktemp("readme_ntuples")
    (directory / "ntuples").mkdir()
    for name, text in CONFIGS.items():
        (directory / name).write_text(text)
    for path, writer in WRITERS.items():
        writer(directory / path, jets, tracks)
    return directory


@pytest.fixture(scope="module")
def workflow_dir(workdir) -> Path:
    """workdir with the Snakefile, config and workflow/ copied in (once)."""
    copy_workflow(workdir)
    return workdir


def test_readme_has_four_complete_configs_and_two_commands():
    assert sorted(CONFIGS) == [
        "my_atlas_root.yaml", "my_atlas_tdd.yaml", "my_jetclass.yaml", "my_jetclass_ten.yaml",
    ]  # fmt: skip
    assert [c.split()[:2] for c in COMMANDS] == [["jettag", "check-config"], ["jettag", "ingest"]]


def test_readme_commands_as_printed(workdir, two_shards):
    for command in COMMANDS:
        result = run(command, workdir)
        assert result.returncode == 0, (command, result.stderr)
        if "check-config" in command:
            assert "# sample atlas, ntuples/user.tdd.h5:" in result.stdout
            assert "#   jet_pt <- 'pt_btagJes' [MeV]" in result.stdout
            assert "#   trk_pt = sin(theta) / |q/p| (from trk_qOverP, trk_theta)" in result.stdout
            assert "#   jet_phi: absent (not in the file, not derivable)" in result.stdout
    jets, tracks = read_all(workdir / "data/ingested/atlas.h5")
    ref_jets, ref_tracks = two_shards
    keep = np.isin(ref_jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    np.testing.assert_allclose(jets["pt"], ref_jets["pt"][keep], rtol=1e-6)
    np.testing.assert_allclose(tracks["d0Uncertainty"], ref_tracks["d0Uncertainty"][keep],
                               rtol=1e-5, atol=1e-8)  # fmt: skip


@pytest.mark.parametrize(("config_file", "sample", "path", "label", "values"), [
    ("my_jetclass.yaml", "jetclass", "ntuples/jetclass.root", "HadronConeExclTruthLabelID",
     {0, 4, 5}),
    ("my_jetclass_ten.yaml", "jetclass", "ntuples/jetclass_ten.root", "jetclass_label",
     {0, 1, 2}),  # QCD, Hbb, Hcc
    ("my_atlas_root.yaml", "atlas", "ntuples/user.ntuple.root", "HadronConeExclTruthLabelID",
     {0, 4, 5}),
])  # fmt: skip
def test_the_other_readme_configs_check_and_ingest(
    workdir, config_file, sample, path, label, values
):
    checked = run(f"jettag check-config --config {config_file}", workdir)
    assert checked.returncode == 0, checked.stderr
    assert f"# sample {sample}, {path}:" in checked.stdout
    out = f"data/ingested/{sample}_{Path(config_file).stem}.h5"
    ingested = run(f"jettag ingest --config {config_file} --sample {sample} --output {out} {path}",
                   workdir)  # fmt: skip
    assert ingested.returncode == 0, ingested.stderr
    jets, _ = read_all(workdir / out)
    assert set(np.unique(jets[label])) == values


def test_snakemake_checks_input_files_before_any_job(workflow_dir):
    workdir = workflow_dir
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


def test_whole_analysis_on_a_dumper_file_as_printed(workflow_dir):
    """`snakemake --cores 2 --configfile my_atlas_tdd.yaml`: MeV, derived fields, to the plots."""
    workdir = workflow_dir
    command = re.search(r"`(snakemake --cores 2 --configfile my_atlas_tdd\.yaml)`", SECTION)
    assert command is not None
    result = run(command.group(1), workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((workdir / "results/metrics/dips.json").read_text())
    baseline = json.loads((workdir / "results/metrics/ip3d.json").read_text())
    assert metrics["auc"]["b_vs_light"] > 0.75 and baseline["auc"]["b_vs_light"] > 0.75
    for name in ("roc.png", "loss_dips.png", "pt_atlas_b_efficiency.png"):
        assert (workdir / "results/plots" / name).stat().st_size > 10_000
    # the jet pT reweighting saw GeV: every jet inside the binning, none in the last bin only
    weights = yaml.safe_load((workdir / "data/prepared/atlas/weights.yaml").read_text())
    counts = np.asarray(weights["reweighting"]["train_counts"])
    assert (counts[:, :-1].sum(axis=1) > 0.9 * counts.sum(axis=1)).all()
