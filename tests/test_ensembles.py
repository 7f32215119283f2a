"""Snapshot ensembles: the cosine-restarts schedule, a member saved per cycle (and after a
resume), snapshots scored as members, the config checks, and the comparison with a deep
ensemble computed from known member predictions."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from jettag import config as cfg
from jettag.commands import stage_settings
from jettag.config import RocGrid, ScheduleConfig
from jettag.config.jobs import parse_variant, snapshot_section, training_job
from jettag.errors import TrainingInterruptedError
from jettag.evaluation.ensembles import compare_ensembles, markdown
from jettag.evaluation.evaluate import evaluate
from jettag.evaluation.predict import predict
from jettag.io.history import history_csv
from jettag.io.predictions import kept_jet_fields, write_predictions
from jettag.training.checkpoint import load_checkpoint, load_trained_model, save_checkpoint
from jettag.training.loop import train_model
from jettag.training.schedules import cycle_ends, lr_factor
from tests.conftest import REPO, d_b, minimal_config, written
from tests.test_training import _sigterm_once_training_runs

CI_STUDIES = REPO / "workflow/configs/ci_studies.yaml"


# ---------------------------------------------------------------------------------------
# The schedule


def test_cosine_restarts_anneal_each_cycle_and_restart_at_its_end():
    schedule = ScheduleConfig("cosine_restarts", warmup_fraction=0.1, min_lr_factor=0.02, cycles=3)
    total = 100
    factors = [lr_factor(step, total, schedule) for step in range(total)]
    ends = cycle_ends(total, schedule)
    assert ends == [40, 70, 100]  # 90 steps after 10 of warm-up, in 3 cycles of 30
    assert factors[:10] == pytest.approx([(k + 1) / 10 for k in range(10)])  # linear warm-up
    starts = [10, *ends[:-1]]
    for start, end in zip(starts, ends, strict=True):
        cycle = factors[start:end]
        assert cycle[0] == pytest.approx(1.0)  # restart at the base rate
        assert all(a > b for a, b in itertools.pairwise(cycle))  # anneals all cycle long
        assert min(cycle) == cycle[-1] < 0.03  # its minimum at its last step, near min_lr
    # a single cycle is the plain cosine schedule
    one = dataclasses.replace(schedule, cycles=1)
    cosine = dataclasses.replace(schedule, name="cosine")
    assert [lr_factor(s, total, one) for s in range(total)] == [
        lr_factor(s, total, cosine) for s in range(total)
    ]
    with pytest.raises(ValueError, match="3 cosine_restarts cycles need at least"):
        cycle_ends(2, schedule)  # 2 steps (no warm-up step) for 3 cycles
    with pytest.raises(ValueError, match="schedule 'cosine' has no cycles"):
        cycle_ends(total, cosine)


# ---------------------------------------------------------------------------------------
# The snapshot training


def _snapshot_model(config, epochs: int, cycles: int, batch_size: int = 64):
    """The fixtures' DIPS on cosine restarts; early stopping as eager as it gets."""
    model = cfg.model_config(config, "dips")
    schedule = ScheduleConfig("cosine_restarts", warmup_fraction=0.0, min_lr_factor=0.01,
                              cycles=cycles)  # fmt: skip
    training = dataclasses.replace(
        model.training, epochs=epochs, batch_size=batch_size, schedule=schedule, patience=1,
        min_delta=10.0,  # no epoch after the first counts as better: patience 1 would stop
    )  # fmt: skip
    return dataclasses.replace(model, training=training)


def test_snapshot_training_writes_a_member_per_cycle(tmp_path, config, prepared):
    model = _snapshot_model(config, epochs=3, cycles=3)
    history = train_model("dips", model, prepared, tmp_path, seed=2, snapshots=True)
    assert len(history) == 3  # every epoch ran, whatever early stopping would have said
    last = load_checkpoint(tmp_path / "last.pt")
    steps = last["scheduler_state"]["last_epoch"]
    ends = cycle_ends(steps, model.training.schedule)
    paths = [tmp_path / f"snapshot_{k}.pt" for k in range(3)]
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    assert [s["cycle"] for s in states] == [0, 1, 2]
    assert [s["step"] for s in states] == ends and [s["epoch"] for s in states] == [0, 1, 2]
    # the last snapshot is the final network; the others differ from it and each other
    for key, value in last["model_state"].items():
        assert torch.equal(states[-1]["model_state"][key], value)
    weights = [next(iter(s["model_state"].values())) for s in states]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    network, spec = load_trained_model(paths[0])
    assert spec.classes == ("b", "c", "light") and not network.training
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporaries left

    # scored as the members of one ensemble
    out = tmp_path / "snapshot.h5"
    predict("dips", prepared / "test.h5", paths, "network", out)
    with h5py.File(out) as f:
        members, jets = f["member_probabilities"][:], f["jets"][:]
    assert members.shape == (3, len(jets), 3) and not np.allclose(members[0], members[2])
    np.testing.assert_allclose(jets["dips_pb"], members[..., 0].mean(0), rtol=1e-6)
    assert "dips_pb_std" in jets.dtype.names

    with pytest.raises(ValueError, match=r"snapshot ensemble needs training\.schedule\.name"):
        train_model("dips", cfg.model_config(config, "dips"), prepared, tmp_path / "x", seed=2,
                    snapshots=True)  # fmt: skip


def test_resumed_snapshot_training_writes_the_same_snapshots(
    tmp_path, config, prepared, monkeypatch
):
    model = _snapshot_model(config, epochs=4, cycles=4, batch_size=16)
    full = tmp_path / "full"
    train_model("dips", model, prepared, full, seed=5, snapshots=True)
    part = tmp_path / "part"
    _sigterm_once_training_runs(monkeypatch, part)  # SIGTERM inside the second epoch
    with pytest.raises(TrainingInterruptedError):
        train_model("dips", model, prepared, part, seed=5, snapshots=True)
    assert (part / "snapshot_0.pt").exists() and not (part / "snapshot_1.pt").exists()
    assert len(load_checkpoint(part / "last.pt")["snapshots"]) == 1
    # Snakemake deletes a rerun job's outputs before it runs again: the snapshots too
    for path in (part / "snapshot_0.pt", part / "best.pt", part / "history.csv"):
        path.unlink()
    train_model("dips", model, prepared, part, seed=5, snapshots=True)
    for k in range(4):
        a, b = (
            load_checkpoint(full / f"snapshot_{k}.pt"),
            load_checkpoint(part / f"snapshot_{k}.pt"),
        )
        assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
        for key in a["model_state"]:
            assert torch.equal(a["model_state"][key], b["model_state"][key]), (k, key)
    # a plain training of the same model does not resume a snapshot run's last.pt
    plain = tmp_path / "plain"
    shutil.copytree(part, plain)
    state = load_checkpoint(plain / "last.pt")
    state["finished"] = False
    save_checkpoint(plain / "last.pt", state)
    history = train_model("dips", model, prepared, plain, seed=5)
    assert len(history) < 4  # started afresh, and early stopping cut it short


# ---------------------------------------------------------------------------------------
# The config


def test_the_snapshot_training_is_the_model_on_cosine_restarts():
    config = cfg.load_config(CI_STUDIES)
    assert str(parse_variant("snapshot/dips")) == "snapshot/dips"
    section = training_job(config, "dips", parse_variant("snapshot/dips"))
    member = training_job(config, "dips", parse_variant("member"))
    ensemble = config["snapshot_ensembles"]["dips"]
    assert section["training"]["schedule"] == {
        **member["training"]["schedule"],
        "name": "cosine_restarts",
        "cycles": ensemble["cycles"],
    }
    assert section["training"]["epochs"] == ensemble["epochs"] and section["members"] == 1
    # the model otherwise as its deep ensemble's members train it
    assert {k: v for k, v in section.items() if k != "training"} == {
        k: v for k, v in member.items() if k != "training"
    }
    assert {k: v for k, v in section["training"].items() if k not in ("schedule", "epochs")} == {
        k: v for k, v in member["training"].items() if k not in ("schedule", "epochs")
    }
    settings = stage_settings("train", config, model="dips", variant="snapshot/dips").as_dict()
    assert settings["model"] == section
    # the other schedules' sections have no `cycles`: no training's rerun trigger moved
    assert "cycles" not in member["training"]["schedule"]
    assert stage_settings("ensemble-comparison", config, ensemble="dips").as_dict() == {
        "snapshot_ensemble": ensemble,
        "evaluation": {"pt_working_point": config["evaluation"]["pt_working_point"]},
    }
    with pytest.raises(cfg.ConfigError, match="snapshot ensemble 'dips' trains 'dips', not"):
        training_job(config, "transformer", parse_variant("snapshot/dips"))
    with pytest.raises(cfg.ConfigError, match="snapshot ensemble 'other' is not in"):
        training_job(config, "dips", parse_variant("snapshot/other"))
    edited = copy.deepcopy(config)
    edited["snapshot_ensembles"]["dips"]["set"] = {"training.schedule.min_lr_factor": 0.1}
    assert snapshot_section(edited, "dips")["training"]["schedule"]["min_lr_factor"] == 0.1


def _with_ensemble(**ensemble) -> dict:
    """The fixtures' minimal config with a snapshot ensemble."""
    raw = minimal_config(snapshot_ensembles={"snap": {"model": "dips", **ensemble}})
    raw["models"]["dips"]["members"] = 3
    return raw


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw["snapshot_ensembles"]["snap"].update(model="nope"),
         r"snapshot_ensembles\.snap\.model 'nope' is not a model"),
        (lambda raw: raw["models"]["dips"].update(kfold=True),
         r"snapshot_ensembles\.snap: models\.dips has kfold true"),
        (lambda raw: raw["snapshot_ensembles"]["snap"].update(
            set={"training.schedule.name": "cosine"}),
         r"snapshot_ensembles\.snap\.set: the schedule of a snapshot ensemble is cosine_restarts"),
        (lambda raw: raw["snapshot_ensembles"]["snap"].update(set={"training.nope.x": 1}),
         r"snapshot_ensembles\.snap\.set: 'training\.nope\.x' is not a path"),
        (lambda raw: raw["snapshot_ensembles"]["snap"].update(cycles=1),
         r"snapshot_ensembles\.snap\.cycles': 1 is less than the minimum of 2"),
        (lambda raw: raw["models"]["dips"]["training"].update(schedule={"name": "cosine_restarts"}),
         r"models\.dips\.training\.schedule\.cycles is required with cosine_restarts"),
        (lambda raw: raw["models"]["dips"]["training"].update(
            schedule={"name": "cosine", "cycles": 3}),
         r"models\.dips\.training\.schedule\.cycles is for cosine_restarts, not 'cosine'"),
    ],
)  # fmt: skip
def test_snapshot_ensembles_that_make_no_sense_are_errors(edit, message):
    raw = _with_ensemble()
    cfg.validate_config(copy.deepcopy(raw))  # valid as it is
    edit(raw)
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate_config(raw)


# ---------------------------------------------------------------------------------------
# The comparison, on predictions whose member rejections are known

N_B, N_C, N_LIGHT = 100, 200, 1000
D_B, WP = d_b(0.018), 0.77


def _ensemble_predictions(path, passing_c, passing_light):
    """Predictions of an ensemble whose member k lets through passing_<bkg>[k] background jets
    at every b-jet cut from 60 to 85 %, the first `common` of them shared by all members.

    b jets score 0.5-0.98 for every member; a passing background jet scores 0.999 (above any
    b jet), the others 0.01 (below all), p_c = p_light = (1 - p_b) / 2 so that D_b grows with
    p_b. A jet passing for one member only averages to about 0.34 in an ensemble of two or
    more: it fails the ensemble's cut, so the ensemble lets through the shared jets alone.
    """
    (common_c, extra_c), (common_l, extra_l) = passing_c, passing_light
    n = N_B + N_C + N_LIGHT
    members = len(extra_l)
    pb = np.full((members, n), 0.01)
    pb[:, :N_B] = np.linspace(0.5, 0.98, N_B)
    for start, common, extra in ((N_B, common_c, extra_c), (N_B + N_C, common_l, extra_l)):
        pb[:, start : start + common] = 0.999
        first = start + common
        for k, count in enumerate(extra):  # every member its own jets
            pb[k, first : first + count] = 0.999
            first += count
    probabilities = np.stack([pb, (1 - pb) / 2, (1 - pb) / 2], axis=-1)  # b, c, light
    jets = np.zeros(n, dtype=[(name, "f4") for name in kept_jet_fields()])
    jets["flavour_label"] = np.repeat([0, 1, 2], [N_B, N_C, N_LIGHT])
    jets["pt"] = 50.0
    write_predictions(path, "dips", ["b", "c", "light"], jets, probabilities)
    metrics = path.with_suffix(".json")
    evaluate(path, D_B, [0.6, 0.7, WP, 0.85], RocGrid(0.5, 0.9, 5)).write(metrics)
    return metrics


def _history(path, epoch_seconds):
    """A history.csv with these epoch times."""
    rows = [{"epoch": k, "train_loss": 1.0, "val_loss": 1.0, "train_accuracy": 0.5,
             "val_accuracy": 0.5, "learning_rate": 1e-3, "epoch_seconds": s,
             "train_track_origin_loss": "nan", "val_track_origin_loss": "nan",
             "wall_seconds": sum(epoch_seconds[: k + 1])}
            for k, s in enumerate(epoch_seconds)]  # fmt: skip
    path.write_text(history_csv(rows))
    return path


def _benchmark(path, wall, cpu):
    """A Snakemake benchmark TSV."""
    path.write_text(
        "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
        f"{wall}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n"
    )
    return path


def _expected(n_jets, common, extra):
    """Rejections of the members, of the ensemble, their mean, std, min, max and the gain."""
    members = [n_jets / (common + e) for e in extra]
    mean = np.mean(members)
    ensemble = n_jets / common
    return {"members": members, "ensemble": ensemble, "mean": mean,
            "std": np.std(members, ddof=1), "min": min(members), "max": max(members),
            "gain": ensemble / mean - 1}  # fmt: skip


def test_comparison_of_known_ensembles(tmp_path):
    deep_c, deep_l = (4, [1, 6, 11]), (10, [5, 10, 15])
    snap_c, snap_l = (8, [2, 12]), (20, [10, 30])
    deep = _ensemble_predictions(tmp_path / "deep.h5", deep_c, deep_l)
    snapshot = _ensemble_predictions(tmp_path / "snapshot.h5", snap_c, snap_l)
    histories = {
        "deep": [_history(tmp_path / f"d{k}.csv", [2.0] * (10 + k)) for k in range(3)],
        "snapshot": [_history(tmp_path / "s.csv", [3.0] * 12)],
    }
    benchmarks = {
        "deep": [_benchmark(tmp_path / f"d{k}.tsv", 30.0 + k, 50.0) for k in range(3)],
        "snapshot": [_benchmark(tmp_path / "s.tsv", 40.0, 70.0)],
    }
    out = tmp_path / "comparison.json"
    result = written(
        compare_ensembles("dips", "dips", {"deep": deep, "snapshot": snapshot}, histories,
                          benchmarks, WP), out,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    for kind, passing in (("deep", {"c": deep_c, "light": deep_l}),
                          ("snapshot", {"c": snap_c, "light": snap_l})):  # fmt: skip
        entry = result["ensembles"][kind]
        assert entry["n_members"] == len(passing["light"][1])
        for bkg, n_jets in (("c", N_C), ("light", N_LIGHT)):
            expected = _expected(n_jets, *passing[bkg])
            got = entry[bkg]
            assert got["members"] == pytest.approx(expected["members"], rel=1e-9)
            for key in ("ensemble", "mean", "std", "min", "max", "gain"):
                assert got[key] == pytest.approx(expected[key], rel=1e-9), (kind, bkg, key)
            assert got["relative_std"] == pytest.approx(expected["std"] / expected["mean"])
            assert not got["ensemble_is_lower_limit"]
    light = result["ensembles"]["deep"]["light"]
    assert light["gain"] == pytest.approx(100 / ((1000 / 15 + 1000 / 20 + 1000 / 25) / 3) - 1)
    assert result["ensembles"]["deep"]["cost"] == {
        "trainings": 3, "epochs": 33, "epoch_seconds": 66.0, "job_wall_seconds": 93.0,
        "job_cpu_seconds": 150.0,
    }  # fmt: skip
    assert result["snapshot_cost_fraction"] == pytest.approx(
        {"epochs": 12 / 33, "epoch_seconds": 36 / 66, "job_wall_seconds": 40 / 93,
         "job_cpu_seconds": 70 / 150}
    )  # fmt: skip
    table = markdown(result)
    assert "| deep | 3 | 3 | 33 | 66 | 93 | 150 |" in table
    assert "| deep | light | 100.0 | 52.2 | 13.5 | 40.0 | 66.7 | +91.5 % |" in table

    # a deep ensemble of one member is its own mean member; without benchmarks no job times
    single = _ensemble_predictions(tmp_path / "single.h5", (4, [6]), (10, [10]))
    result = compare_ensembles(
        "dips",
        "dips",
        {"deep": single, "snapshot": snapshot},
        {**histories, "deep": histories["deep"][:1]},
        {},
        WP,
    ).to_dict()
    light = result["ensembles"]["deep"]["light"]
    assert light["ensemble"] == light["mean"] == light["min"] == pytest.approx(50.0)
    assert light["std"] is None and light["gain"] is None
    assert result["ensembles"]["deep"]["cost"]["job_wall_seconds"] is None
    assert "| deep | light | 50.0 | 50.0 | n/a | 50.0 | 50.0 | n/a |" in markdown(result)
