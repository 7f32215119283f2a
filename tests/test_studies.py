"""Model-choice studies: config inheritance, study jobs, label noise, normalisation placement."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from jettag import config as cfg
from jettag.config.jobs import parse_variant, training_job
from jettag.evaluation.study import markdown, target_val_loss, time_to_target
from jettag.io.history import history_csv, read_history
from jettag.models.layers import mlp
from jettag.models.registry import build_model
from jettag.training.data import TensorData
from jettag.training.lr_finder import (
    centred_losses,
    lr_range_test,
    smoothed_losses,
    suggestions,
)
from tests.conftest import REPO, minimal_config


def _study(**changes) -> dict:
    study = {
        "model": "dips",
        "seeds": 2,
        "max_train_jets": 500,
        "x": "training.batch_size",
        "points": [
            {"name": "b32", "set": {"training.batch_size": 32}},
            {"name": "b128", "series": "linear", "set": {"training.batch_size": 128,
                                                         "training.learning_rate": 0.02}},
        ],
    }  # fmt: skip
    study.update(changes)
    return study


def test_extends_replaces_whole_top_level_sections(tmp_path):
    base = minimal_config(
        evaluation={
            "discriminant": {"signal": "b", "fractions": {"c": 0.05, "light": 0.95}},
            "working_points": [0.7],
        }
    )
    (tmp_path / "configs").mkdir()
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    child = {"extends": "../base.yaml", "evaluation": {"working_points": [0.6]}}
    (tmp_path / "configs/child.yaml").write_text(yaml.safe_dump(child))
    loaded = cfg.load_config(tmp_path / "configs/child.yaml")
    assert loaded["models"]["dips"]["training"]["learning_rate"] == 0.005  # from the base
    assert loaded["evaluation"]["working_points"] == [0.6]
    # a whole section: the base's discriminant (f_c = 0.05) is not kept
    assert loaded["evaluation"]["discriminant"]["fractions"] == {"c": 0.018, "light": 0.982}
    assert loaded == cfg.load_config(tmp_path / "base.yaml") | {"evaluation": loaded["evaluation"]}


def test_extends_cycle_and_missing_base_are_named(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(cfg.ConfigError, match="cycle"):
        cfg.load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(cfg.ConfigError, match=r"nowhere\.yaml: config file not found"):
        cfg.load_config(tmp_path / "c.yaml")


def test_the_studies_config_is_the_default_analysis_plus_studies():
    studies = cfg.load_config(REPO / "workflow/configs/studies.yaml")
    default = cfg.load_config(REPO / "config.yaml")
    added = ("studies", "lr_finder", "snapshot_ensembles")
    assert {k: v for k, v in studies.items() if k not in added} == {
        k: v for k, v in default.items() if k not in added
    }
    assert default["studies"] == {} and default["lr_finder"]["models"] == []
    assert default["snapshot_ensembles"] == {}
    assert set(studies["studies"]) >= {"capacity", "capacity_label_noise", "batch_size"}
    # the snapshot ensemble trains as long as a DIPS member may (40 epochs), 5 cycles of 8
    snapshot = studies["snapshot_ensembles"]["dips"]
    assert snapshot["model"] == "dips" and snapshot["cycles"] == 5 and snapshot["epochs"] is None
    assert studies["models"]["dips"]["members"] == 5


def test_the_gn2_parity_config_adds_two_transformers_to_the_default_analysis():
    parity = cfg.load_config(REPO / "workflow/configs/gn2_parity.yaml")
    default = cfg.load_config(REPO / "config.yaml")
    changed = ("models", "datasets")
    assert {k: v for k, v in parity.items() if k not in changed} == {
        k: v for k, v in default.items() if k not in changed
    }
    # the default's models and hybrid as they are: where the default ran, they do not retrain
    for name in ("dips", "transformer"):
        assert parity["models"][name] == default["models"][name]
    assert parity["datasets"]["hybrid"] == default["datasets"]["hybrid"]
    resampled = parity["datasets"]["hybrid_resampled"]
    assert resampled["components"] == default["datasets"]["hybrid"]["components"]
    assert resampled["resample"]["method"] == "importance"
    # the two new ones are the default transformer on another dataset, nothing else
    for name, dataset in (("transformer_ttbar", "ttbar"),
                          ("transformer_resampled", "hybrid_resampled")):  # fmt: skip
        model = dict(parity["models"][name])
        assert model.pop("dataset") == dataset
        expected = {k: v for k, v in default["models"]["transformer"].items() if k != "dataset"}
        assert {k: v for k, v in model.items() if k != "label"} == {
            k: v for k, v in expected.items() if k != "label"
        }


def test_a_study_point_is_the_model_changed_as_the_point_says():
    config = cfg.validate_config(minimal_config(studies={"lr": _study()}))
    variant = parse_variant("study/lr/b128")
    assert str(variant) == "study/lr/b128"
    section = training_job(config, "dips", variant)
    training = section["training"]
    assert (training["batch_size"], training["learning_rate"]) == (128, 0.02)
    assert training["max_train_jets"] == 500  # the study's cap
    assert training["epochs"] == config["models"]["dips"]["training"]["epochs"]  # model's own
    with pytest.raises(cfg.ConfigError, match="'nope' is not one of"):
        training_job(config, "dips", parse_variant("study/lr/nope"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "gn2"}, "studies.s.model 'gn2' is not a model"),
        ({"x": "training.epochs"}, "studies.s.x is 'training.epochs', which point 'b32'"),
        ({"points": [{"name": "a", "set": {"training.nothing.here": 1}}]}, "not a path"),
        ({"points": [{"name": "a", "set": {"training.batch_size": -4}}]}, "batch_size"),
        ({"points": [{"name": "a", "set": {}}, {"name": "a", "set": {}}]}, "duplicate names"),
    ],
)
def test_bad_studies_fail_validation_with_the_key_named(change, message):
    raw = minimal_config(studies={"s": _study(**change)})
    with pytest.raises(cfg.ConfigError, match=message):
        cfg.validate_config(raw)


def _split(n: int = 3000, classes: int = 3) -> TensorData:
    labels = torch.arange(n) % classes
    return TensorData(
        tracks=torch.zeros(n, 2, 1), valid=torch.ones(n, 2, dtype=torch.bool),
        jets=torch.zeros(n, 0), labels=labels, weights=torch.ones(n),
        track_origin=torch.full((n, 2), -1, dtype=torch.int8),
        track_vertex=torch.full((n, 2), -1, dtype=torch.int16), event_number=torch.arange(n),
    )  # fmt: skip


def test_label_noise_flips_the_fraction_to_other_classes_reproducibly():
    clean = _split()
    noisy = clean.with_label_noise(0.2, 3, seed=11)
    flipped = noisy.labels != clean.labels
    assert int(flipped.sum()) == 600  # exactly the fraction, never a "flip" to the true class
    assert ((noisy.labels >= 0) & (noisy.labels < 3)).all()
    # every wrong class is used, about equally
    wrong = (noisy.labels[flipped] - clean.labels[flipped]) % 3
    assert 250 < int((wrong == 1).sum()) < 350
    assert torch.equal(noisy.labels, clean.with_label_noise(0.2, 3, seed=11).labels)
    assert not torch.equal(noisy.labels, clean.with_label_noise(0.2, 3, seed=12).labels)
    assert torch.equal(clean.labels, torch.arange(3000) % 3)  # the input is not changed
    assert clean.with_label_noise(0.0, 3, seed=11) is clean


def _norm_positions(net: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in net]


def test_normalisation_before_or_after_the_activation():
    before = mlp(4, [8, 8], "relu", 0.0, "layer", "before_activation")
    after = mlp(4, [8, 8], "relu", 0.0, "batch", "after_activation")
    assert _norm_positions(before) == ["Linear", "LayerNorm", "ReLU"] * 2
    assert _norm_positions(after) == ["Linear", "ReLU", "BatchNorm1d"] * 2
    assert _norm_positions(mlp(4, [8], "relu", 0.0, "none", "after_activation")) == [
        "Linear",
        "ReLU",
    ]
    with pytest.raises(ValueError, match="placement"):
        mlp(4, [8], "relu", 0.0, "layer", "sideways")


def _model(section_changes: dict, architecture: str):
    raw = minimal_config()
    dips = raw["models"]["dips"]
    dips["architecture"] = architecture
    dips["transformer"] = {"embed_dim": 16, "num_heads": 2, "num_layers": 2}
    for key, value in section_changes.items():
        group, name = key.split(".")
        dips.setdefault(group, {})[name] = value
    model_config = cfg.model_config(cfg.validate_config(raw), "dips")
    torch.manual_seed(0)
    return build_model(model_config, n_track_features=5, n_jet_features=2, n_classes=3).eval()


@pytest.mark.parametrize(
    ("architecture", "changes"),
    [
        ("deepsets", {"deepsets.normalisation": "layer",
                      "deepsets.normalisation_placement": "after_activation"}),
        ("deepsets", {"deepsets.normalisation": "batch",
                      "deepsets.normalisation_placement": "after_activation"}),
        ("transformer", {"transformer.norm_placement": "post"}),
    ],
)  # fmt: skip
def test_placements_keep_the_set_invariances(architecture, changes):
    model = _model(changes, architecture)
    g = torch.Generator().manual_seed(1)
    tracks, jets = torch.randn(6, 8, 5, generator=g), torch.randn(6, 2, generator=g)
    valid = torch.arange(8)[None, :] < torch.tensor([0, 1, 3, 8, 5, 2])[:, None]
    tracks[~valid] = 0.0
    out = model(tracks, valid, jets)
    perm = torch.randperm(8, generator=g)
    torch.testing.assert_close(out, model(tracks[:, perm], valid[:, perm], jets))
    garbage = torch.cat([tracks, 99.0 * torch.ones(6, 3, 5)], dim=1)
    padded = torch.cat([valid, torch.zeros(6, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(out, model(garbage, padded, jets), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(out).all()


def test_post_norm_is_another_network_with_the_same_weights():
    pre = _model({"transformer.norm_placement": "pre"}, "transformer")
    post = _model({"transformer.norm_placement": "post"}, "transformer")
    post.load_state_dict(copy.deepcopy(pre.state_dict()))  # same parameters, same names
    tracks, valid = torch.randn(4, 6, 5), torch.ones(4, 6, dtype=torch.bool)
    jets = torch.randn(4, 2)
    assert not torch.allclose(pre(tracks, valid, jets), post(tracks, valid, jets))


def test_smoothed_losses_are_bias_corrected():
    flat = smoothed_losses(np.full(50, 0.7))
    np.testing.assert_allclose(flat, 0.7)  # no start-up bias towards zero
    step = smoothed_losses(np.r_[np.ones(20), np.zeros(200)])
    assert step[19] == pytest.approx(1.0) and step[-1] < 0.05 and (np.diff(step[19:]) < 0).all()


def test_centred_average_does_not_lag():
    ramp = np.linspace(0.0, 1.0, 300)
    np.testing.assert_allclose(centred_losses(ramp)[20:-20], ramp[20:-20], atol=1e-12)
    assert smoothed_losses(ramp)[150] < ramp[150] - 0.05  # the trailing average lags behind
    noisy = ramp + np.random.default_rng(0).normal(0, 0.1, 300)
    assert np.std(centred_losses(noisy) - ramp) < 0.4 * np.std(noisy - ramp)


def test_suggestions_on_a_known_curve():
    rates = np.logspace(-6, 0, 121)
    x = np.log10(rates)
    # flat, a fall centred at 1e-3 (steepest there), a minimum at 1e-2, then a rise
    loss = 1.1 - 0.5 * (1 + np.tanh((x + 3) / 0.4)) / 2 + np.where(x > -2, (x + 2) ** 2, 0.0)
    suggested = suggestions(rates, loss)
    assert suggested["steepest"] == pytest.approx(1e-3, rel=0.15)
    assert suggested["minimum"] == pytest.approx(1e-2, rel=0.3)
    assert suggested["minimum_over_10"] == pytest.approx(suggested["minimum"] / 10)
    rising = suggestions(rates, np.linspace(1, 2, 121))
    assert rising["steepest"] == rates[0]  # a range that starts too high says so


def test_lr_range_test_on_generated_jets(prepared, config):
    model_config = cfg.model_config(config, "dips")
    result = lr_range_test(
        "dips", model_config, prepared, config["seed"], 1e-4, 10.0, 200, 4.0
    ).to_dict()
    smoothed = np.array(result["smoothed_loss"])
    # tiny rates leave the loss at ln(3); it falls, has a minimum inside the range, then rises
    assert abs(result["loss"][0] - np.log(3)) < 0.3
    best = int(smoothed.argmin())
    assert smoothed[best] < smoothed[0] - 0.1
    assert 20 < best < len(smoothed) - 20 and smoothed[-1] > smoothed[best] + 0.1
    suggested = result["suggested"]
    assert 1e-4 < suggested["steepest"] < suggested["minimum"] < 10.0
    # a tighter stop ends the test soon after the minimum, and says why
    stopped = lr_range_test(
        "dips", model_config, prepared, config["seed"], 1e-4, 10.0, 200, 1.15
    ).to_dict()
    assert stopped["steps_run"] < 200 and "1.15 x its minimum" in stopped["stopped"]
    assert stopped["loss"] == result["loss"][: stopped["steps_run"]]  # seeded: same steps


def _write_history(path, val_losses, epoch_seconds) -> None:
    rows = [
        {"epoch": k, "train_loss": v, "val_loss": v, "train_accuracy": 0.5, "val_accuracy": 0.5,
         "learning_rate": 1e-3, "epoch_seconds": t, "train_track_origin_loss": np.nan,
         "val_track_origin_loss": np.nan, "wall_seconds": 10.0 * (k + 1)}
        for k, (v, t) in enumerate(zip(val_losses, epoch_seconds, strict=True))
    ]  # fmt: skip
    path.write_text(history_csv(rows))


def test_time_to_target_on_known_histories(tmp_path):
    history = {"val_loss": np.array([1.0, 0.8, 0.85, 0.7, 0.72]),
               "epoch_seconds": np.array([2.0, 3.0, 2.0, 4.0, 1.0])}  # fmt: skip
    # the first epoch at or below the target; seconds: the running total of epoch times
    assert time_to_target(history, 1.0) == (1, 2.0)
    assert time_to_target(history, 0.9) == (2, 5.0)
    assert time_to_target(history, 0.8) == (2, 5.0)
    assert time_to_target(history, 0.75) == (4, 11.0)
    assert time_to_target(history, 0.69) == (None, None)  # never: not 0
    # history.csv's wall_seconds column (running over a resume) is the clock when present
    _write_history(tmp_path / "a.csv", [1.0, 0.8, 0.85, 0.7, 0.72], [2.0, 3.0, 2.0, 4.0, 1.0])
    assert time_to_target(read_history(tmp_path / "a.csv"), 0.75) == (4, 40.0)
    # the default target: the worst run's best loss, which every run reaches
    _write_history(tmp_path / "b.csv", [0.9, 0.78, 0.76], [1.0, 1.0, 1.0])
    files = [tmp_path / "a.csv", tmp_path / "b.csv"]
    target, source = target_val_loss({"target_val_loss": None}, files)
    assert target == pytest.approx(0.76) and "worst run" in source
    assert [time_to_target(read_history(f), target)[0] for f in files] == [4, 3]
    assert target_val_loss({"target_val_loss": 0.5}, files) == (0.5, "config")


def test_study_markdown_says_never_reached():
    def point(name, epochs, reached):
        return {
            "name": name, "series": "", "n_parameters": 10, "runs": [{}, {}],
            "diagnoses": ["healthy", "healthy"], "runs_reaching_target": reached,
            **{k: 1.0 for k in ("val_loss", "train_loss", "light_rejection", "c_rejection",
                                "epochs", "jets_per_second", "seconds_to_target")},
            **{f"{k}_std": None for k in ("val_loss", "train_loss", "light_rejection",
                                          "c_rejection", "epochs", "jets_per_second",
                                          "seconds_to_target", "epochs_to_target")},
            "epochs_to_target": epochs,
        }  # fmt: skip

    result = {
        "study": "t", "model": "dips", "seeds": 2, "b_efficiency": 0.77,
        "target_val_loss": 0.7123, "target_source": "config",
        "points": [point("fast", 3.0, 2), point("slow", 7.0, 1), point("stuck", None, 0)],
    }  # fmt: skip
    rows = {line.split(" | ")[0][2:]: line for line in markdown(result).splitlines()[4:7]}
    assert "| 3.0 |" in rows["fast"] and "| 7.0 (1/2 reached) |" in rows["slow"]
    assert rows["stuck"].count("never reached") == 2 and "| 0" not in rows["stuck"]
    assert "Target validation loss 0.7123 (studies config)" in markdown(result)
