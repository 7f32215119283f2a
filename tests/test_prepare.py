"""Preprocessing on a real generated sample: splits, lifetime signs, normalisation, weights."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import yaml

from jettag.features.reweight import HistogramAccumulator
from jettag.features.split import assign_split, event_uniform
from jettag.io.canonical import read_all
from jettag.io.fields import lifetime_signed_d0_significance
from jettag.simulate import pdg
from jettag.transforms import MeanVarianceAccumulator, apply_transform


def test_split_fractions_and_event_integrity():
    events = np.repeat(np.arange(20_000), 3)  # three jets per event
    split = assign_split(events, {"train": 0.6, "val": 0.2, "test": 0.2})
    fractions = np.bincount(split, minlength=3) / split.size
    np.testing.assert_allclose(fractions, [0.6, 0.2, 0.2], atol=0.01)
    assert (split.reshape(-1, 3) == split.reshape(-1, 3)[:, :1]).all()
    u = event_uniform(np.arange(1000))
    assert u.min() >= 0 and u.max() < 1 and np.array_equal(u, event_uniform(np.arange(1000)))


def test_lifetime_sign_of_d0():
    # ATLAS: sign(sin(phi_jet - phi_trk) d0), dphi = phi_trk - phi_jet. A b-decay track
    # leaving the jet axis at dphi > 0 has perigee d0 = L sin(-dphi) < 0: positive sd0
    assert lifetime_signed_d0_significance(-0.1, 0.01, 0.1) == pytest.approx(10)
    assert lifetime_signed_d0_significance(0.1, 0.01, -0.1) == pytest.approx(10)
    assert lifetime_signed_d0_significance(0.1, 0.01, 0.1) == pytest.approx(-10)
    assert lifetime_signed_d0_significance(-0.1, 0.01, -0.1) == pytest.approx(-10)


def test_prepared_files(prepared, ingested):
    weights = yaml.safe_load((prepared / "weights.yaml").read_text())
    norm = yaml.safe_load((prepared / "norm.yaml").read_text())
    splits = {}
    for name in ("train", "val", "test"):
        with h5py.File(prepared / f"{name}.h5") as f:
            splits[name] = (f["jets"][:], f["tracks"][:])
            assert list(f["jets"].attrs["flavour_label"]) == ["b", "c", "light"]
    events = [set(splits[s][0]["eventNumber"].tolist()) for s in splits]
    assert (
        not (events[0] & events[1]) and not (events[0] & events[2]) and not (events[1] & events[2])
    )
    n_in = len(read_all(ingested)[0])
    n_out = sum(len(j) for j, _ in splits.values())
    assert n_out + weights["dropped_jets"] == n_in  # only tau jets are dropped
    train_jets, train_tracks = splits["train"]
    assert not np.all(np.diff(train_jets["eventNumber"]) >= 0)  # shuffled
    valid = train_tracks["valid"]
    labels = train_jets["flavour_label"]

    # normalisation is fitted on train: transformed train values have mean 0 and std 1 there
    entry = norm["tracks"]["ptfrac"]
    z = (
        apply_transform(entry["transform"], train_tracks["ptfrac"][valid]) - entry["mean"]
    ) / entry["std"]
    assert z.mean() == pytest.approx(0, abs=1e-4) and z.std() == pytest.approx(1, abs=1e-4)

    # lifetime-signed sd0 of tracks from B decays is mostly positive, of primary tracks symmetric
    sd0 = train_tracks["IP3D_signed_d0_significance"][valid]
    origin = train_tracks["ftagTruthOriginLabel"][valid]
    # signed about the reconstructed (smeared) jet axis: 82 % on the default sample, 83 %
    # about the truth axis (benchmarks/realism_ablation.py --quick)
    assert np.mean(sd0[origin == pdg.ORIGIN_FROM_B] > 0) > 0.75
    assert 0.4 < np.mean(sd0[origin == pdg.ORIGIN_PRIMARY] > 0) < 0.65

    # pT reweighting: each class's weighted pT shape equals the b shape (bins not clipped)
    edges = np.asarray(weights["reweighting"]["pt_bins_gev"])
    hist = HistogramAccumulator(edges, 3)
    hist.update(train_jets["pt"], labels)
    w_hist = np.zeros_like(hist.counts)
    bins = np.clip(np.searchsorted(edges, train_jets["pt"], side="right") - 1, 0, edges.size - 2)
    np.add.at(w_hist, (labels, bins), train_jets["sample_weight"])
    raw_shapes = hist.counts / hist.counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        unclipped = (raw_shapes[0] / raw_shapes < 20.0).all(axis=0)  # max_weight not reached
    comparable = (hist.counts > 0).all(axis=0) & unclipped
    assert comparable.sum() >= 5
    shapes = w_hist[:, comparable] / w_hist[:, comparable].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(shapes[1], shapes[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(shapes[2], shapes[0], rtol=1e-5, atol=1e-7)
    for c in range(3):  # each class keeps its mean weight 1
        assert train_jets["sample_weight"][labels == c].mean() == pytest.approx(1.0, rel=1e-5)
    # class weights equalise the classes' total weight
    sums = np.bincount(labels, weights=train_jets["sample_weight"], minlength=3)
    balanced = sums * np.asarray(weights["class_weights"])
    np.testing.assert_allclose(balanced, balanced.mean(), rtol=1e-5)


def test_streaming_moments_match_numpy():
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=10_001)
    acc = MeanVarianceAccumulator()
    for chunk in np.array_split(values, 7):
        acc.update(chunk)
    mean, std = acc.result()
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert std == pytest.approx(values.std(), rel=1e-10)


def test_small_blocks_give_the_same_dataset(tmp_path, prepared, ingested, config, monkeypatch):
    """Many blocks and buckets (bounded memory) change the row order, nothing else."""
    from jettag import config as cfg
    from jettag.features import prepare as prepare_module

    monkeypatch.setattr(prepare_module, "BLOCK_JETS", 97)
    out = tmp_path / "small_blocks"
    prepare_module.prepare_dataset(ingested, cfg.section(cfg.PrepareConfig, config["prepare"]),
                                   3, out)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in prepared.iterdir())
    for name in ("train", "val", "test"):
        a_jets, a_tracks = read_all(prepared / f"{name}.h5")
        b_jets, b_tracks = read_all(out / f"{name}.h5")
        a_order = np.lexsort((a_jets["pt"], a_jets["eventNumber"]))
        b_order = np.lexsort((b_jets["pt"], b_jets["eventNumber"]))
        assert np.array_equal(a_jets[a_order], b_jets[b_order])
        assert np.array_equal(a_tracks[a_order], b_tracks[b_order])
        assert not np.array_equal(b_order, np.arange(len(b_order)))  # shuffled
    # the moments and weights are accumulated block by block: equal up to rounding
    for file in ("norm.yaml", "weights.yaml"):
        a = yaml.safe_load((prepared / file).read_text())
        b = yaml.safe_load((out / file).read_text())
        assert _numbers(a) == pytest.approx(_numbers(b), rel=1e-9)


def _numbers(tree) -> list:
    """Every number of a nested YAML document, depth first (strings kept as they are)."""
    if isinstance(tree, dict):
        return [x for key in sorted(tree) for x in _numbers(tree[key])]
    if isinstance(tree, list):
        return [x for item in tree for x in _numbers(item)]
    return [tree]


def test_test_only_events_go_to_the_test_split():
    events = np.arange(40_000)
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    plain = assign_split(events, fractions)
    split = assign_split(events, fractions, test_only_from=30_000)
    assert (split[events >= 30_000] == 2).all()
    np.testing.assert_array_equal(split[events < 30_000], plain[events < 30_000])
    np.testing.assert_array_equal(assign_split(events, fractions, None), plain)


def test_test_shards_add_test_jets_and_leave_train_and_val_alone(tmp_path, ingested, config):
    """The events above the threshold (here: half of the sample) are all test; the rest split
    as without it, and the training normalisation and weights are fitted on the same jets."""
    from jettag import config as cfg
    from jettag.features.prepare import prepare_dataset

    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    ingested_jets = read_all(ingested)[0]
    events = ingested_jets["eventNumber"]
    threshold = int(np.median(events))
    # what the first half alone gives: the reference for train and val
    first_half = tmp_path / "first_half.h5"
    _copy_jets(ingested, first_half, events < threshold)
    reference = prepare_dataset(first_half, prepare, 3, tmp_path / "reference")
    counts = prepare_dataset(ingested, prepare, 3, tmp_path / "extra", threshold)
    assert counts["train"] == reference["train"] and counts["val"] == reference["val"]
    test_jets = read_all(tmp_path / "extra" / "test.h5")[0]
    tau = ingested_jets["HadronConeExclTruthLabelID"] == 15  # not a class: dropped
    n_above = int(((events >= threshold) & ~tau).sum())
    assert len(test_jets) == len(read_all(tmp_path / "reference" / "test.h5")[0]) + n_above
    for name in ("train", "val"):
        assert read_all(tmp_path / "extra" / f"{name}.h5")[0]["eventNumber"].max() < threshold
    assert yaml.safe_load((tmp_path / "extra" / "norm.yaml").read_text()) == yaml.safe_load(
        (tmp_path / "reference" / "norm.yaml").read_text()
    )


def _copy_jets(source, target, keep) -> None:
    """A canonical file holding the kept jets of source, with its attributes."""
    with h5py.File(source, "r") as f, h5py.File(target, "w") as g:
        for name in ("jets", "tracks"):
            g.create_dataset(name, data=f[name][:][keep])
            g[name].attrs.update(dict(f[name].attrs))
        g.attrs.update(dict(f.attrs))
