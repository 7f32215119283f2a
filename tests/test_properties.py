"""Property-based tests (hypothesis): padding, sorting, truncation and masking on random jets."""

from __future__ import annotations

import awkward as ak
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jettag.config import DeepSetsConfig, TransformerConfig
from jettag.io.readers import sort_and_pad
from jettag.models.deepsets import DeepSets
from jettag.models.transformer import TransformerTagger

finite = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, width=32)
sigma = st.floats(min_value=0.0625, max_value=2.0, width=32)
track = st.tuples(finite, sigma, st.floats(min_value=0.5, max_value=100.0, width=32))
jets_of_tracks = st.lists(st.lists(track, max_size=12), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(jets=jets_of_tracks, max_tracks=st.integers(min_value=1, max_value=8))
def test_sort_and_pad_keeps_the_most_significant_tracks_packed_first(jets, max_tracks):
    counts = [len(jet) for jet in jets]
    flat = np.array([t for jet in jets for t in jet], dtype=np.float32).reshape(-1, 3)
    tracks = ak.zip({name: ak.unflatten(flat[:, k], counts)
                     for k, name in enumerate(("d0", "d0Uncertainty", "pt"))})  # fmt: skip
    key = np.abs(tracks.d0) / tracks.d0Uncertainty
    out, n_tracks = sort_and_pad(tracks, key, max_tracks)
    assert out.shape == (len(jets), max_tracks)
    assert n_tracks.tolist() == [len(jet) for jet in jets]  # the count before truncation
    for row, jet in zip(out, jets, strict=True):
        kept = min(len(jet), max_tracks)
        assert row["valid"].tolist() == [True] * kept + [False] * (max_tracks - kept)
        assert np.all(row["d0"][kept:] == 0) and np.all(row["pt"][kept:] == 0)  # zero padding
        row_key = np.abs(row["d0"][:kept]) / row["d0Uncertainty"][:kept]
        assert np.all(np.diff(row_key) <= 0)  # descending significance
        all_keys = sorted((np.float32(abs(d)) / np.float32(s) for d, s, _ in jet), reverse=True)
        np.testing.assert_allclose(row_key, all_keys[:kept], rtol=1e-6)  # the top ones kept


def _batch(data, n_features: int, n_jet_features: int):
    """Random inputs: (tracks, valid, jets) with garbage in the padding slots."""
    batch = data.draw(st.integers(min_value=1, max_value=6))
    slots = data.draw(st.integers(min_value=1, max_value=10))
    counts = data.draw(st.lists(st.integers(0, slots), min_size=batch, max_size=batch))
    seed = data.draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    tracks = torch.randn(batch, slots, n_features, generator=generator)
    valid = torch.arange(slots)[None, :] < torch.tensor(counts)[:, None]
    jets = torch.randn(batch, n_jet_features, generator=generator)
    return tracks, valid, jets, generator


MODELS = {
    "deepsets": lambda: DeepSets(
        5, 2, 3, DeepSetsConfig((8, 8), (8,), "relu", 0.0, "layer", "before_activation")
    ),
    "deepsets_norm_after": lambda: DeepSets(
        5, 2, 3, DeepSetsConfig((8, 8), (8,), "relu", 0.0, "layer", "after_activation")
    ),
    "transformer": lambda: TransformerTagger(
        5, 2, 3, TransformerConfig(8, 2, 2, 2, (8,), (8,), 2, "gelu", 0.0, "pre")
    ),
    "transformer_post_norm": lambda: TransformerTagger(
        5, 2, 3, TransformerConfig(8, 2, 2, 2, (8,), (8,), 2, "gelu", 0.0, "post")
    ),
}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(MODELS)))
def test_padding_never_matters_and_tracks_are_a_set(data, name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    tracks, valid, jets, generator = _batch(data, 5, 2)
    with torch.no_grad():
        reference = model(tracks, valid, jets)
        # garbage in the padding slots changes nothing
        noisy = torch.where(
            valid[..., None], tracks, 1e3 * torch.randn(tracks.shape, generator=generator)
        )
        torch.testing.assert_close(model(noisy, valid, jets), reference, rtol=1e-5, atol=1e-5)
        # the export path (no data-dependent shapes) gives the same logits
        torch.testing.assert_close(model.forward_dense(noisy, valid, jets), reference,
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
        # reordering the tracks of every jet (valid ones first, as the files store them)
        order = torch.argsort(torch.rand(valid.shape, generator=generator) - 2.0 * valid, dim=1)
        shuffled = torch.gather(tracks, 1, order[..., None].expand_as(tracks))
        torch.testing.assert_close(model(shuffled, torch.gather(valid, 1, order), jets), reference,
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
