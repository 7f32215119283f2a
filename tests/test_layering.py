"""Imports read top-down: each package imports only the layers below it, and stages that need
no network never import torch (it costs ~1.4 s per command, ~150 commands per analysis).

Layers, bottom to top (a package may import its own layer and those below):
  foundation  errors, atomic, kinematics, signals, flavours, transforms, config, stages
  io          readers and writers of every file format
  simulate    Pythia 8 + FastJet + tracker (may write through io)
  features    preprocessing
  models      the networks and the IP3D-like baseline
  training    the loop, data loading, checkpoints
  evaluation  predictions, metrics, diagnostics
  plotting    figures from numbers files
  export, commands, cli  the ONNX exporter, the stage declarations and the command line
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import REPO

PACKAGE = REPO / "src" / "jettag"
FOUNDATION = {
    "errors", "atomic", "kinematics", "signals", "flavours", "transforms", "config", "stages",
    "cluster",
}  # fmt: skip
ALLOWED = {
    "io": set(),
    "simulate": {"io"},
    "features": {"io"},
    "models": set(),
    "training": {"io", "features", "models"},
    "evaluation": {"io", "features", "models", "training"},
    "plotting": {"io", "evaluation"},
}
# within the foundation: what each module may import (the rest of it sits above)
FOUNDATION_ALLOWED = {
    "errors": set(),
    "atomic": set(),
    "kinematics": set(),
    "signals": set(),
    "flavours": {"errors"},  # a class set file that cannot be read is an InputError
    "transforms": {"config"},  # fitting takes the InputConfig of each input
    "config": {"errors", "flavours"},
    "stages": {"errors", "config"},
    "cluster": {"errors"},
}


def _imports(path: Path) -> set[str]:
    """The jettag top-level units (package or module) a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jettag"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from jettag import config
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("jettag."))
    return found


def _unit(path: Path) -> str:
    """The top-level unit a source file belongs to ('io', 'config', 'cli', ...)."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def test_packages_import_only_the_layers_below():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit in ("cli", "commands", "export", "__init__"):
            continue
        if unit in FOUNDATION:
            allowed = FOUNDATION_ALLOWED[unit] | {unit}
        else:
            allowed = FOUNDATION | ALLOWED[unit] | {unit}
        bad = _imports(path) - allowed
        if bad:
            violations.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_the_layering_check_sees_lazy_and_package_imports(tmp_path):
    """The check itself: an import inside a function and `from jettag import x` both count."""
    source = tmp_path / "m.py"
    source.write_text(
        textwrap.dedent("""
        from jettag import config as cfg
        def f():
            from jettag.training.loop import train_model
            import jettag.plotting.roc
    """)
    )
    assert _imports(source) == {"config", "training", "plotting"}


def test_cli_and_non_network_stages_do_not_import_torch():
    code = "import sys, jettag.cli; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


@pytest.fixture
def without_torch(tmp_path) -> dict:
    """An environment in which `import torch` fails, as on a machine without it."""
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    return {"PYTHONPATH": str(tmp_path / "blocker"), "MPLBACKEND": "Agg"}


def _predictions(path: Path, tagger: str, labels: np.ndarray, rng: np.random.Generator) -> Path:
    """A hand-built predictions file (FTAG layout) of 600 jets with these labels."""
    logits = rng.normal(size=(600, 3)) + 2.0 * np.eye(3)[labels]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    dtype = [("pt", "f4"), ("eta", "f4"), ("flavour_label", "i4"), (f"{tagger}_pb", "f4"),
             (f"{tagger}_pc", "f4"), (f"{tagger}_pu", "f4")]  # fmt: skip
    jets = np.zeros(600, dtype=dtype)
    jets["pt"] = 20.0 + np.arange(600) % 230
    jets["flavour_label"] = labels
    for k, suffix in enumerate(("pb", "pc", "pu")):
        jets[f"{tagger}_{suffix}"] = prob[:, k]
    with h5py.File(path, "w") as f:
        f["jets"] = jets
        f["jets"].attrs["flavour_label"] = ["b", "c", "light"]
        f["jets"].attrs["tagger"] = tagger
    return path


def test_evaluation_and_plot_stages_run_without_torch(tmp_path, without_torch):
    import os

    env = {**os.environ, **without_torch}
    config = REPO / "workflow/configs/ci.yaml"
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 600)  # one test split, two taggers
    dips = _predictions(tmp_path / "dips.h5", "dips", labels, rng)
    ip3d = _predictions(tmp_path / "ip3d.h5", "ip3d", labels, rng)
    commands = [
        ["evaluate", "--predictions", dips, "--output", tmp_path / "dips.json"],
        ["evaluate", "--predictions", ip3d, "--output", tmp_path / "ip3d.json"],
        ["working-points", "--dataset", "ttbar", "--output-json", tmp_path / "wp.json",
         "--output-md", tmp_path / "wp.md", ip3d, dips],
        ["performance", "--predictions", dips, "--output-pt", tmp_path / "pt.json",
         "--output-scores", tmp_path / "scores.json"],
        ["plot-roc", "--dataset", "ttbar", "--comparison", tmp_path / "wp.json",
         "--output-stem", tmp_path / "roc",
         tmp_path / "ip3d.json", tmp_path / "dips.json"],
    ]  # fmt: skip
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True)
    assert blocked.returncode != 0  # the blocker works
    for command in commands:
        argv = [sys.executable, "-m", "jettag.cli", command[0], "--config", str(config)]
        run = subprocess.run([*argv, *map(str, command[1:])], env=env, capture_output=True,
                             text=True)  # fmt: skip
        assert run.returncode == 0, (command[0], run.stderr[-2000:])
    assert (tmp_path / "roc.png").stat().st_size > 10_000


def _loaded_after_importing(modules: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing these ones."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(ast.literal_eval(run.stdout.strip()))


def test_evaluation_never_loads_the_training_loop():
    """Scoring a trained model needs its checkpoint (training/checkpoint.py), not the loop,
    its progress bars, DDP and augmentation: importing every evaluation module (and export)
    must leave jettag.training.loop unloaded."""
    modules = [
        *sorted(
            f"jettag.evaluation.{p.stem}"
            for p in (PACKAGE / "evaluation").glob("*.py")
            if p.stem != "__init__"
        ),
        "jettag.export",
    ]
    loaded = {m for m in _loaded_after_importing(modules) if m.startswith("jettag.training")}
    assert "jettag.training.loop" not in loaded, sorted(loaded)
    assert "jettag.training.checkpoint" in loaded  # what they load models with


def test_plotting_never_loads_torch():
    """A figure is drawn from numbers: importing every plotting module (and the plot stages'
    commands, which read the results files into their dataclasses) leaves torch unloaded."""
    modules = sorted(f"jettag.plotting.{p.stem}" for p in (PACKAGE / "plotting").glob("*.py"))
    loaded = _loaded_after_importing([*modules, "jettag.commands.plots", "jettag.io.results"])
    assert "torch" not in loaded
