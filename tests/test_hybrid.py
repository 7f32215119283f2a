"""Datasets made of samples: hybrid pT ranges per class, resampling, and their test splits."""

from __future__ import annotations

import shutil
from collections import Counter

import h5py
import numpy as np
import pytest
import yaml

from jettag import config as cfg
from jettag.errors import InputError
from jettag.features.prepare import prepare_dataset
from jettag.features.reweight import fit_resampling
from jettag.features.split import assign_split
from jettag.io.canonical import read_all
from tests.conftest import minimal_config


def _prepare_config(config) -> cfg.PrepareConfig:
    return cfg.section(cfg.PrepareConfig, config["prepare"])


def _relabelled_copy(ingested, tmp_path, sample: str):
    """The ingested sample under another sample's name (the same jets: a second component)."""
    path = tmp_path / f"{sample}.h5"
    shutil.copy(ingested, path)
    with h5py.File(path, "a") as f:
        f["jets"].attrs["sample"] = sample
    return path


def _keys(path) -> Counter:
    """(eventNumber, pt) of every jet of a prepared split, with multiplicity."""
    with h5py.File(path) as f:
        jets = f["jets"][:]
    return Counter(zip(jets["eventNumber"].tolist(), jets["pt"].tolist(), strict=True))


def test_hybrid_takes_each_sample_in_its_pt_range_per_class(tmp_path, config, ingested):
    low = _relabelled_copy(ingested, tmp_path, "ttbar")
    high = _relabelled_copy(ingested, tmp_path, "zprime")
    cut = {"b": 40.0, "c": 60.0, "light": 50.0}
    components = [
        cfg.ComponentConfig("ttbar", 1, {}, cut),
        cfg.ComponentConfig("zprime", 1, cut, {}),
    ]
    out = tmp_path / "hybrid"
    prepare_dataset([low, high], _prepare_config(config), 3, out, None, components, None, "hybrid")
    # by hand: below the class's cut from the first copy, at or above it from the second;
    # every jet of the three classes exactly once, in the split of its event
    jets, _ = read_all(ingested)
    truth = {5: "b", 4: "c", 0: "light"}
    expected = {name: Counter() for name in ("train", "val", "test")}
    split = assign_split(jets["eventNumber"], {"train": 0.6, "val": 0.2, "test": 0.2})
    for jet, s in zip(jets, split, strict=True):
        if int(jet["HadronConeExclTruthLabelID"]) in truth:
            name = ("train", "val", "test")[s]
            expected[name][(int(jet["eventNumber"]), float(jet["pt"]))] += 1
    for name in expected:
        assert _keys(out / f"{name}.h5") == expected[name]
    with h5py.File(out / "train.h5") as f:
        assert f["jets"].attrs["sample"] == "hybrid"


def test_a_part_of_another_sample_is_refused(tmp_path, config, ingested):
    wrong = _relabelled_copy(ingested, tmp_path, "zprime")
    components = [cfg.ComponentConfig("ttbar", 1, {}, {})]
    with pytest.raises(InputError, match=r"zprime\.h5: holds sample 'zprime'.*'ttbar'"):
        prepare_dataset([wrong], _prepare_config(config), 3, tmp_path / "out", None, components)


def test_resampling_factors_give_every_class_the_target_shape():
    rng = np.random.default_rng(5)
    pt_edges = np.array([20.0, 40, 80, 160, 400])
    eta_edges = np.array([0.0, 1.0, 2.5])
    n = 200_000
    labels = rng.integers(0, 3, n)
    # each class its own spectrum: the light jets softest, the b jets hardest
    pt = 20 + rng.exponential(np.array([80.0, 50.0, 30.0])[labels])
    eta = rng.uniform(-2.5, 2.5, n) * np.where(labels == 0, 0.7, 1.0)
    counts = np.zeros((3, 4, 2))
    pt_bin = np.clip(np.searchsorted(pt_edges, pt, side="right") - 1, 0, 3)
    eta_bin = np.clip(np.searchsorted(eta_edges, np.abs(eta), side="right") - 1, 0, 1)
    np.add.at(counts, (labels, pt_bin, eta_bin), 1)
    target_shape = counts[0] / counts[0].sum()
    for method in ("importance", "countup"):
        resampling = fit_resampling(counts, pt_edges, eta_edges, 0, method, 1000.0)
        copies = resampling.copies(pt, eta, labels, np.random.default_rng(1))
        after = np.zeros((3, 4, 2))
        np.add.at(after, (labels, pt_bin, eta_bin), copies)
        for c in range(3):
            shape = after[c] / after[c].sum()
            # Poisson noise of ~10^4-10^5 jets a class: shapes agree to a few per mille
            np.testing.assert_allclose(shape, target_shape, atol=4e-3)
        if method == "importance":  # each class keeps its size on average
            sizes = np.bincount(labels, weights=copies, minlength=3)
            np.testing.assert_allclose(sizes, counts.sum(axis=(1, 2)), rtol=0.02)
        else:  # only repeats: no jet of a bin the target populates is dropped
            assert copies.min() >= 1


def test_resampled_dataset_keeps_its_test_split_and_weights_train_by_copies(
    tmp_path, config, ingested
):
    raw = minimal_config()
    raw["datasets"] = {
        "resampled": {"components": [{"sample": "ttbar"}],
                      "resample": {"method": "countup", "pt_bins_gev": [20, 60, 3000],
                                   "abs_eta_bins": [0, 1.2, 2.5]}},
    }  # fmt: skip
    validated = cfg.validate_config(raw)
    from jettag import stages

    settings = stages.prepare(validated, "resampled")
    assert settings["resample"]["target"] == "b"  # prepare.reweight.target, the default
    components = [cfg.ComponentConfig(**c) for c in settings["components"]]
    resample = cfg.section(cfg.ResampleConfig, settings["resample"])
    plain, resampled = tmp_path / "plain", tmp_path / "resampled"
    prepare = _prepare_config(validated)
    prepare_dataset(ingested, prepare, 3, plain)
    prepare_dataset(ingested, prepare, 3, resampled, None, components, resample, "resampled")
    # the test split is never resampled: the same jets, in the same order
    with h5py.File(plain / "test.h5") as a, h5py.File(resampled / "test.h5") as b:
        np.testing.assert_array_equal(a["jets"][:], b["jets"][:])
    for split in ("train", "val"):
        before, after = _keys(plain / f"{split}.h5"), _keys(resampled / f"{split}.h5")
        # countup repeats jets: every jet of a bin the target fills is there at least once
        assert set(after) <= set(before)
        assert sum(after.values()) > sum(before.values())
        with h5py.File(resampled / f"{split}.h5") as f:
            assert np.all(f["jets"]["sample_weight"] == 1.0)
            assert f["model_inputs"]["labels"].shape[0] == sum(after.values())
    info = yaml.safe_load((resampled / "weights.yaml").read_text())
    assert info["resampling"]["method"] == "countup"
    counted = Counter()
    with h5py.File(resampled / "train.h5") as f:
        counted.update(f["jets"]["flavour_label"].tolist())
    assert [info["resampling"]["counts"]["train"][c] for c in ("b", "c", "light")] == [
        counted[i] for i in range(3)
    ]


def test_input_histograms_of_a_resampled_split_show_it_before_and_after(tmp_path, config, ingested):
    from jettag.evaluation.input_histograms import input_histograms

    prepare = _prepare_config(config)
    plain, resampled = tmp_path / "plain", tmp_path / "resampled"
    resample = cfg.ResampleConfig("importance", "b", (20.0, 60.0, 3000.0), (0.0, 2.5), 20.0)
    components = [cfg.ComponentConfig("ttbar", 1, {}, {})]
    prepare_dataset(ingested, prepare, 3, plain)
    prepare_dataset(ingested, prepare, 3, resampled, None, components, resample, "r")
    result = input_histograms(resampled).to_dict()["jet_pt"]
    assert result["balance"] == "resample"
    edges = np.asarray(result["edges"])

    def counts(path):
        with h5py.File(path) as f:
            jets = f["jets"][:]
        pt = np.clip(jets["pt"], edges[0], edges[-1])
        return [np.histogram(pt[jets["flavour_label"] == c], edges)[0] for c in range(3)]

    before, after = counts(plain / "train.h5"), counts(resampled / "train.h5")
    for index, name in enumerate(("b", "c", "light")):
        np.testing.assert_array_equal(result[name]["counts"], before[index])
        np.testing.assert_array_equal(result[name]["weighted"], after[index])


def test_models_scored_on_further_datasets_are_taggers_of_those_datasets():
    from jettag import stages
    from jettag.config.jobs import TrainingVariant

    raw = minimal_config()
    raw["samples"]["zprime"] = {"source": "generate", "process": "zprime"}
    components = [{"sample": "ttbar", "pt_max_gev": 250}, {"sample": "zprime", "pt_min_gev": 250}]
    raw["datasets"] = {"hybrid": {"components": components}}
    raw["models"]["gn2"] = {**raw["models"]["dips"], "dataset": "hybrid", "label": "GN2",
                            "test_datasets": ["ttbar", "zprime"]}  # fmt: skip
    config = cfg.validate_config(raw)
    assert cfg.taggers(config) == ["ip3d", "dips", "gn2", "gn2@zprime"]
    assert [cfg.tagger_dataset(config, t) for t in cfg.taggers(config)] == [
        "ttbar",
        "ttbar",
        "ttbar",
        "zprime",
    ]
    assert cfg.train_dataset(config, "gn2@zprime") == "hybrid"
    assert cfg.tagger_label(config, "gn2@zprime") == "GN2"
    assert stages.predict(config, "gn2@zprime") == {"kind": "network"}
    # the Z' figures divide by the reference scored there, when it is
    assert stages.ratio_reference(config, "zprime") == "gn2@zprime"
    with pytest.raises(cfg.ConfigError, match=r"'ttbar' is not among models.gn2.test_datasets"):
        cfg.tagger_dataset(config, "gn2@ttbar")
    # where a model is scored is not how it is trained: no key of its training changes
    trained = cfg.training_job(config, "gn2", TrainingVariant("member"))
    assert "test_datasets" not in trained
    settings = stages.prepare(config, "hybrid")
    assert [c["pt_max_gev"] for c in settings["components"]] == [
        {"b": 250, "c": 250, "light": 250},
        {},
    ]
    raw["models"]["gn2"]["test_datasets"] = ["ttbar", "nowhere"]
    with pytest.raises(cfg.ConfigError, match="test_datasets: 'nowhere' is not in samples"):
        cfg.validate_config(raw)
