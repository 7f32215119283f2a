"""Shared fixtures: a small Pythia sample made once per session, ingested and prepared."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from jettag import config as cfg
from jettag.evaluation.discriminant import Discriminant
from jettag.features.prepare import prepare_dataset
from jettag.io.canonical import read_all
from jettag.io.ingest import ingest_sample
from jettag.simulate.generate import generate_shard

REPO = Path(__file__).resolve().parents[1]
SMALL_EVENTS = 300


def copy_workflow(workdir: Path) -> None:
    """The Snakefile, default config and workflow/ copied into workdir, to run there."""
    shutil.copy(REPO / "Snakefile", workdir)
    shutil.copy(REPO / "config.yaml", workdir)
    shutil.copytree(REPO / "workflow", workdir / "workflow")


def d_b(f_c: float) -> Discriminant:
    """ATLAS's D_b = log(p_b / (f_c p_c + (1 - f_c) p_light)) as a Discriminant."""
    return Discriminant("b", (("c", f_c), ("light", 1.0 - f_c)))


def written(result, path: Path) -> dict:
    """Write a Result where its stage would, and give back its JSON object (what tests read)."""
    result.write(path)
    return result.to_dict()


def write_table(predictions, discriminant, working_points, output_json, output_md, **options):
    """working_point_table written as the working-points stage writes it (JSON and markdown)."""
    from jettag.atomic import write_text
    from jettag.evaluation.working_points import working_point_table

    table = working_point_table(predictions, discriminant, working_points, **options)
    write_text(output_md, table.markdown())
    return written(table, output_json)


def minimal_config(**overrides) -> dict:
    """A valid config dict with one generated sample, one model and the IP3D baseline."""
    raw = {
        "seed": 3,
        "samples": {"ttbar": {"source": "generate", "n_shards": 1, "events_per_shard": 50}},
        "models": {
            "dips": {
                "dataset": "ttbar",
                "architecture": "deepsets",
                "deepsets": {"track_layers": [16, 16], "jet_layers": [16]},
                "training": {"epochs": 3, "batch_size": 64, "learning_rate": 0.005},
            }
        },
        "baselines": {"ip3d": {"dataset": "ttbar", "kind": "ip3d"}},
    }
    raw.update(overrides)
    return raw


@pytest.fixture(scope="session")
def config() -> dict:
    """Validated, default-filled minimal config."""
    return cfg.validate_config(minimal_config())


@pytest.fixture(scope="session")
def generated_root(tmp_path_factory, config) -> Path:
    """One shard of SMALL_EVENTS ttbar events (Pythia 8 + FastJet + tracker) as ROOT."""
    path = tmp_path_factory.mktemp("generated") / "0.root"
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    generate_shard(
        "ttbar", cfg.sample_config(config, "ttbar"), simulation, config["seed"], 0, path,
        n_events=SMALL_EVENTS,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, config, generated_root) -> Path:
    """The generated shard in the canonical HDF5 layout."""
    path = tmp_path_factory.mktemp("ingested") / "ttbar.h5"
    ingest = cfg.section(cfg.IngestConfig, config["ingest"])
    ingest_sample(cfg.reading_config(config, "ttbar"), [generated_root], ingest, path)
    return path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, config, ingested) -> Path:
    """Prepared train/val/test of the small sample."""
    out = tmp_path_factory.mktemp("prepared") / "ttbar"
    prepare_dataset(ingested, cfg.section(cfg.PrepareConfig, config["prepare"]), 3, out)
    return out


# jets of users' own ntuples (tests/test_own_ntuples.py, tests/test_ingest_real_ntuples.py)
OWN_NTUPLE_JETS = 600


@pytest.fixture(scope="module")
def source(ingested) -> tuple[np.ndarray, np.ndarray]:
    """b, c and light jets of the generated sample (JetClass one-hot labels have no tau)."""
    jets, tracks = read_all(ingested)
    keep = np.isin(jets["HadronConeExclTruthLabelID"], [0, 4, 5])
    return jets[keep][:OWN_NTUPLE_JETS], tracks[keep][:OWN_NTUPLE_JETS]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """List the outcome of every SLURM test by name: CI's log shows they ran, not skipped."""
    lines = []
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if "slurm" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if outcome == "passed" and report.when != "call":
                    continue
                reason = ""
                if outcome == "skipped" and isinstance(report.longrepr, tuple):
                    reason = f" ({report.longrepr[2]})"
                lines.append(f"{outcome.upper():8} {report.nodeid}{reason}")
    if lines:
        terminalreporter.write_sep("=", "SLURM tests (a real one-node cluster)")
        for line in lines:
            terminalreporter.write_line(line)
