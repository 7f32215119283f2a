"""Kills at seeded random points of every stage command, and of the whole workflow.

Each stage runs as the `jettag <stage>` command that its Snakemake rule runs (in a new
process group, as a batch system would start it), is killed with SIGTERM and then with
SIGKILL, and is rerun. After each kill every output is absent or complete, and nothing
left behind looks like an output; the rerun finishes with what an uninterrupted run gives.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import torch
import uproot
import yaml
from matplotlib import image

from jettag import config as cfg
from jettag.training.checkpoint import load_checkpoint, save_checkpoint
from jettag.training.loop import train_model
from tests.conftest import copy_workflow, minimal_config

TIMEOUT = 300
HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
                "learning_rate")  # fmt: skip


def _start(args: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start a command in its own process group, stdout and stderr to log."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)  # fmt: skip


def _jettag(args: list, log: Path) -> subprocess.Popen:
    """Start `jettag <args>` (the CLI entry point, run by this interpreter)."""
    return _start([sys.executable, "-m", "jettag.cli", *map(str, args)], log)


def _kill_when(proc: subprocess.Popen, sig: int, trigger: Callable[[], bool]) -> tuple[int, bool]:
    """Send sig to the process group once trigger() is true; (exit status, whether it was sent)."""
    sent = False
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if trigger():
            try:
                os.killpg(proc.pid, sig)
                sent = True
            except ProcessLookupError:  # it ended just now
                pass
            break
        time.sleep(0.001)
    return proc.wait(timeout=TIMEOUT), sent


def _after(seconds: float) -> Callable[[], bool]:
    """A trigger that fires once the given number of seconds has passed from now."""
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


def _writing(directory: Path) -> Callable[[], bool]:
    """A trigger that fires once a temporary output (a hidden entry) exists in directory."""
    return lambda: directory.is_dir() and any(p.name.startswith(".") for p in directory.iterdir())


def _then(trigger: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """A trigger that fires the given number of seconds after another one has."""
    fired_at: list[float] = []

    def check() -> bool:
        if not fired_at and trigger():
            fired_at.append(time.monotonic())
        return bool(fired_at) and time.monotonic() - fired_at[0] >= seconds

    return check


def _updated(path: Path) -> Callable[[], bool]:
    """A trigger that fires once path is written (created or replaced) from now on."""
    before = path.stat().st_mtime_ns if path.exists() else None
    return lambda: path.exists() and path.stat().st_mtime_ns != before


# ---------------------------------------------------------------------------------------------
# What each stage writes, and how to tell a complete output from the reference run's.


def _same_h5(path: Path, reference: Path) -> None:
    """Every dataset (in groups too) and attribute of two HDF5 files is equal."""
    with h5py.File(path) as a, h5py.File(reference) as b:
        names: list[str] = []
        b.visit(names.append)
        seen: list[str] = []
        a.visit(seen.append)
        assert sorted(seen) == sorted(names)
        for name in names:
            if isinstance(b[name], h5py.Dataset):
                assert np.array_equal(a[name][:], b[name][:]), f"{path}: {name}"
            assert {k: str(v) for k, v in a[name].attrs.items()} == {
                k: str(v) for k, v in b[name].attrs.items()
            }


def _same_root(path: Path, reference: Path) -> None:
    """Every branch of the jets tree of two ROOT files is equal."""
    with uproot.open(path) as a, uproot.open(reference) as b:
        assert a["jets"].keys() == b["jets"].keys()
        assert ak.array_equal(a["jets"].arrays(), b["jets"].arrays())


def _same_text(path: Path, reference: Path) -> None:
    """Equal text files."""
    assert path.read_text() == reference.read_text(), path


def _same_json(path: Path, reference: Path) -> None:
    """Equal JSON content."""
    assert json.loads(path.read_text()) == json.loads(reference.read_text()), path


def _history(path: Path) -> list[dict]:
    """history.csv rows, the columns that do not depend on timing."""
    with open(path) as f:
        return [{k: float(row[k]) for k in HISTORY_KEYS} for row in csv.DictReader(f)]


def _same_best(path: Path, reference: Path) -> None:
    """best.pt with the reference's weights and epoch."""
    a, b = load_checkpoint(path), load_checkpoint(reference)
    assert a["epoch"] == b["epoch"] and a["val_loss"] == b["val_loss"]
    for key, value in b["model_state"].items():
        assert torch.equal(a["model_state"][key], value), key


def _same_history(path: Path, reference: Path) -> None:
    """history.csv with the reference's losses, epoch by epoch."""
    assert _history(path) == _history(reference)


def _valid_png(path: Path, reference: Path) -> None:
    """A PNG that decodes to an image of the reference's size."""
    assert image.imread(path).shape == image.imread(reference).shape


def _valid_pdf(path: Path, reference: Path) -> None:
    """A whole PDF: header, and the end-of-file marker at the end."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")


@dataclasses.dataclass
class Stage:
    """A stage command and its outputs (name -> check against the reference output)."""

    directory: str  # of its outputs, under the run directory
    args: Callable[[Path, Path], list]  # (reference run, this run's output directory) -> args
    outputs: dict[str, Callable[[Path, Path], None]]
    state: tuple[str, ...] = ()  # files kept between runs that are not outputs (last.pt)
    mid_write: Callable[[Path], Callable[[], bool]] = _writing


STAGES = {
    "generate": Stage(
        "generated",
        lambda ref, out: ["generate", "--config", ref / "config.yaml", "--sample", "ttbar",
                          "--shard", "0", "--output", out / "0.root"],
        {"0.root": _same_root},
    ),
    "ingest": Stage(
        "ingested",
        lambda ref, out: ["ingest", "--config", ref / "config.yaml", "--sample", "ttbar",
                          "--output", out / "ttbar.h5", ref / "generated.root"],
        {"ttbar.h5": _same_h5},
    ),
    "prepare": Stage(
        "prepared",
        lambda ref, out: ["prepare", "--config", ref / "config.yaml", "--dataset", "ttbar",
                          "--input", ref / "ingested/ttbar.h5", "--output-dir", out],
        {"train.h5": _same_h5, "val.h5": _same_h5, "test.h5": _same_h5, "norm.yaml": _same_text,
         "weights.yaml": _same_text},
    ),
    "train": Stage(
        "models/dips/0",
        lambda ref, out: ["train", "--config", ref / "config.yaml", "--model", "dips", "--member",
                          "0", "--data-dir", ref / "prepared", "--output-dir", out, "--threads",
                          "1"],
        {"best.pt": _same_best, "history.csv": _same_history},
        state=("last.pt",),
        mid_write=lambda out: _updated(out / "last.pt"),  # an epoch has ended: resumable
    ),
    "predict": Stage(
        "predictions",
        lambda ref, out: ["predict", "--config", ref / "config.yaml", "--tagger", "dips",
                          "--test", ref / "prepared/test.h5", "--output", out / "dips.h5",
                          ref / "models/dips/0/best.pt"],
        {"dips.h5": _same_h5},
    ),
    "evaluate": Stage(
        "metrics",
        lambda ref, out: ["evaluate", "--config", ref / "config.yaml", "--predictions",
                          ref / "predictions/dips.h5", "--output", out / "dips.json"],
        {"dips.json": _same_json},
    ),
    "working-points": Stage(
        "working_points",
        lambda ref, out: ["working-points", "--config", ref / "config.yaml", "--dataset",
                          "ttbar", "--output-json", out / "ttbar.json", "--output-md",
                          out / "ttbar.md", ref / "predictions/dips.h5"],
        {"ttbar.json": _same_json, "ttbar.md": _same_text},
    ),
    "plot-roc": Stage(
        "plots",
        lambda ref, out: ["plot-roc", "--config", ref / "config.yaml", "--dataset", "ttbar",
                          "--comparison", ref / "working_points/ttbar.json", "--output-stem",
                          out / "roc", ref / "metrics/dips.json"],
        {"roc.png": _valid_png, "roc.pdf": _valid_pdf},
    ),
}  # fmt: skip


@dataclasses.dataclass
class Reference:
    """The uninterrupted run of every stage: its directory and each command's wall time."""

    directory: Path
    seconds: dict[str, float]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, generated_root) -> Reference:
    """Every stage command run once to completion, in DAG order, on the generated sample."""
    ref = tmp_path_factory.mktemp("reference")
    raw = minimal_config(baselines={}, plots={"formats": ["png", "pdf"]})
    training = raw["models"]["dips"]["training"]
    training.update(epochs=6, batch_size=32, patience=10)  # long enough to be killed in
    (ref / "config.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(generated_root, ref / "generated.root")
    seconds = {}
    for name, stage in STAGES.items():
        start = time.monotonic()
        proc = _jettag(stage.args(ref, ref / stage.directory), ref / f"{name}.log")
        assert proc.wait(timeout=TIMEOUT) == 0, (ref / f"{name}.log").read_text()[-3000:]
        seconds[name] = time.monotonic() - start
    return Reference(ref, seconds)


def _check_after_kill(stage: Stage, out: Path, ref: Path, status: int, log: str) -> None:
    """Outputs absent or complete; anything else is a hidden temporary (none after SIGTERM)."""
    expected = set(stage.outputs) | set(stage.state)
    leftovers = sorted(p.name for p in out.iterdir() if p.name not in expected)
    assert all(name.startswith(".") and (".tmp" in name or name.startswith(".prepare-"))
               for name in leftovers), leftovers  # fmt: skip
    if status == 128 + signal.SIGTERM:  # the command caught SIGTERM and cleaned up
        assert not leftovers, (leftovers, log)
    if stage.state:  # training: the state so far, each file whole and consistent
        _check_training_so_far(out, ref)
        return
    for name, same in stage.outputs.items():
        if (out / name).exists():
            same(out / name, ref / name)


def _check_training_so_far(out: Path, ref: Path) -> None:
    """An interrupted training's files load and agree with the uninterrupted run so far."""
    reference = _history(ref / "history.csv")
    if (out / "history.csv").exists():
        so_far = _history(out / "history.csv")
        assert so_far == reference[: len(so_far)]
    if (out / "best.pt").exists():
        best = load_checkpoint(out / "best.pt")
        assert best["val_loss"] == reference[best["epoch"]]["val_loss"]
    if (out / "last.pt").exists():
        last = load_checkpoint(out / "last.pt")
        assert (
            last["history"] == []
            or [{k: row[k] for k in HISTORY_KEYS} for row in last["history"]]
            == reference[: len(last["history"])]
        )


@pytest.mark.parametrize("name", list(STAGES))
def test_killed_stage_leaves_no_partial_output_and_reruns(name, reference, tmp_path):
    stage = STAGES[name]
    ref = reference.directory
    out = tmp_path / stage.directory
    args = stage.args(ref, out)
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # the same kill points every run
    duration = reference.seconds[name]
    first, last = rng.uniform(0.2, 1.0, size=2) * duration
    kills = [  # (signal, trigger made when the command starts)
        # a batch system's warning, at a random point of the command's run
        (signal.SIGTERM, lambda: _after(first)),
        # no warning, while an output is being written (or once an epoch has ended)
        (signal.SIGKILL, lambda: stage.mid_write(out)),
        # no warning, at a random point
        (signal.SIGKILL, lambda: _after(last)),
    ]
    if stage.state:  # training, from nothing: SIGTERM inside the epoch after the first one
        rows = csv.DictReader((ref / stage.directory / "history.csv").read_text().splitlines())
        inside = rng.uniform(0.1, 0.9) * np.mean([float(row["epoch_seconds"]) for row in rows])
        kills.insert(0, (signal.SIGTERM, lambda: _then(_updated(out / "last.pt"), inside)))
    resumable, ever_resumable = False, False
    for k, (sig, make_trigger) in enumerate(kills):
        log = tmp_path / f"kill{k}.log"
        trigger = make_trigger()
        status, sent = _kill_when(_jettag(args, log), sig, trigger)
        assert status in ((0, -sig, 128 + sig) if sent else (0,)), (status, log.read_text())
        out.mkdir(parents=True, exist_ok=True)
        _check_after_kill(stage, out, ref / stage.directory, status, log.read_text())
        if stage.state and k == 0:  # the loop saw SIGTERM: last.pt saved where it stopped
            assert status == 128 + signal.SIGTERM, log.read_text()
            assert "rerun the same command to resume" in log.read_text()
        if status == 0:
            shutil.rmtree(out)  # finished before the kill: start the next one from nothing
        last_pt = out / "last.pt"
        resumable = last_pt.exists() and not load_checkpoint(last_pt)["finished"]
        ever_resumable |= resumable
    log = tmp_path / "rerun.log"
    assert _jettag(args, log).wait(timeout=TIMEOUT) == 0, log.read_text()[-3000:]
    for name_, same in stage.outputs.items():
        same(out / name_, ref / stage.directory / name_)
    # the rerun removed what the kills left: only the outputs (and training's last.pt) remain
    assert sorted(p.name for p in out.iterdir()) == sorted({*stage.outputs, *stage.state})
    if stage.state:
        assert load_checkpoint(out / "last.pt")["finished"]
        # a kill after an epoch's checkpoint leaves a run to resume, not to restart
        assert ever_resumable, "no kill left an unfinished last.pt"
        assert ("resuming dips/0 at epoch" in log.read_text()) == resumable


def test_rerun_job_whose_outputs_were_deleted_gets_best_pt_back(tmp_path, config, prepared):
    model = cfg.model_config(config, "dips")
    model = dataclasses.replace(model, training=dataclasses.replace(model.training, epochs=1))
    train_model("dips", model, prepared, tmp_path, seed=4)
    reference = tmp_path / "reference_best.pt"
    shutil.copy(tmp_path / "best.pt", reference)
    shutil.copy(tmp_path / "history.csv", tmp_path / "reference_history.csv")
    # killed after the last epoch's checkpoint, before last.pt was marked finished...
    state = load_checkpoint(tmp_path / "last.pt")
    state["finished"] = False
    save_checkpoint(tmp_path / "last.pt", state)
    # ...then Snakemake reruns the job, deleting its outputs first (last.pt is not one)
    (tmp_path / "best.pt").unlink()
    (tmp_path / "history.csv").unlink()
    history = train_model("dips", model, prepared, tmp_path, seed=4)
    assert len(history) == 1
    _same_best(tmp_path / "best.pt", reference)
    _same_history(tmp_path / "history.csv", tmp_path / "reference_history.csv")


CI_CONFIG = "workflow/configs/ci.yaml"
TARGET = "results/metrics/dips.json"


@pytest.mark.slow
def test_killed_workflow_reruns_to_the_end_and_training_resumes(tmp_path):
    """The CI analysis up to the DIPS metrics, interrupted twice while DIPS trains: SIGTERM
    to the whole process group inside an epoch, rerun; SIGKILL to it at the next epoch's
    checkpoint, unlock, rerun the incomplete jobs."""
    copy_workflow(tmp_path)
    # DIPS epochs take ~0.03 s on an idle machine: train 12 of them, so that there is an
    # epoch left to be killed in whatever the machine's speed
    ci = yaml.safe_load((tmp_path / CI_CONFIG).read_text())
    ci["models"]["dips"]["training"].update(epochs=12, patience=12)
    (tmp_path / CI_CONFIG).write_text(yaml.safe_dump(ci, sort_keys=False))
    command = ["snakemake", "--cores", "2", TARGET, "--configfile", CI_CONFIG]
    rng = np.random.default_rng(11)
    model_dir = tmp_path / "results/models/dips/0"
    last = model_dir / "last.pt"

    proc = _start(command, tmp_path / "run1.log", cwd=tmp_path)
    inside = rng.uniform(0.0, 0.01)  # seconds into the second epoch
    status, sent = _kill_when(proc, signal.SIGTERM, _then(_updated(last), inside))
    assert sent and status != 0
    stopped = load_checkpoint(last)
    assert not stopped["finished"]
    train_log = (tmp_path / "logs/train/dips/0.log").read_text()
    assert "interrupted: SIGTERM: saved" in train_log, train_log[-3000:]
    assert not (model_dir / "best.pt").exists()  # Snakemake removed the failed job's outputs
    _assert_no_temporaries(tmp_path)

    proc = _start(command, tmp_path / "run2.log", cwd=tmp_path)
    status, sent = _kill_when(proc, signal.SIGKILL, _updated(last))
    assert sent and status == -signal.SIGKILL
    assert "resuming dips/0 at epoch" in (tmp_path / "logs/train/dips/0.log").read_text()
    assert load_checkpoint(last)["epoch"] > stopped["epoch"]  # went on from where it stopped

    # a SIGKILLed Snakemake leaves its lock behind: unlock, then redo the incomplete jobs
    unlock = subprocess.run([*command, "--unlock"], cwd=tmp_path, capture_output=True, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    proc = _start([*command, "--rerun-incomplete"], tmp_path / "run3.log", cwd=tmp_path)
    assert proc.wait(timeout=900) == 0, (tmp_path / "run3.log").read_text()[-5000:]
    assert "resuming dips/0 at epoch" in (tmp_path / "logs/train/dips/0.log").read_text()
    metrics = json.loads((tmp_path / TARGET).read_text())
    assert metrics["tagger"] == "dips" and 0.5 < metrics["auc"]["b_vs_light"] <= 1.0
    history = _history(model_dir / "history.csv")
    training = yaml.safe_load((tmp_path / CI_CONFIG).read_text())["models"]["dips"]["training"]
    assert [row["epoch"] for row in history] == list(range(training["epochs"]))
    assert load_checkpoint(last)["finished"]
    best = load_checkpoint(model_dir / "best.pt")
    assert best["val_loss"] == min(row["val_loss"] for row in history)
    _assert_no_temporaries(tmp_path)


def _assert_no_temporaries(run_dir: Path) -> None:
    """No hidden file or directory (a temporary output) under data/ or results/."""
    hidden = [p for top in ("data", "results") for p in (run_dir / top).rglob(".*")]
    assert not hidden, hidden


def test_sigterm_that_extension_code_turns_into_another_error_still_exits_143(monkeypatch, capsys):
    """pybind11 reports an exception raised while a module initialises (SIGTERM landing in
    `import pythia8mc`) as 'ImportError: initialization failed'; it is still a SIGTERM."""
    from jettag import cli

    config = str(Path(__file__).resolve().parents[1] / "workflow/configs/ci.yaml")

    def interrupted_import(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the handler raises in here
        except cli.TerminatedError:
            raise ImportError("initialization failed") from None
        raise AssertionError("SIGTERM was not delivered")

    monkeypatch.setattr(cli, "_run", interrupted_import)
    assert cli.main(["check-config", "--config", config]) == 128 + signal.SIGTERM
    assert "terminated by SIGTERM" in capsys.readouterr().err

    # the same error without a SIGTERM is a real one, and is not hidden
    def broken_import(args):
        raise ImportError("initialization failed")

    monkeypatch.setattr(cli, "_run", broken_import)
    with pytest.raises(ImportError, match="initialization failed"):
        cli.main(["check-config", "--config", config])
