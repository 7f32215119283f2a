"""What the vertexing task costs: the track-pair head against a dense-per-pair reference.

The transformer's PairHead (jettag.models.transformer) gives every hidden unit
s(x_a) + s(x_b) + u(x_a) u(x_b) + j(jet), both maps run per track, so a pair costs a few
elementwise operations. The reference is the head it replaced (before 65a6b93): a hidden
layer of embed_dim units on x_a + x_b, x_a * x_b and the jet, i.e. a matrix product per
pair. Both are timed forward + backward on random embeddings of batches whose jets carry
ttbar-like (5-20) and Z'-like (15-40) valid tracks, and the whole small transformer's
training step (jet loss only, or with the pair head) for scale.

    python benchmarks/pair_head.py [--threads 2] [--repeats 7]

Prints a table (medians over repeats) and writes results/benchmarks/pair_head.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from record import write_result
from torch import nn

from jettag import config as cfg
from jettag.models.registry import build_model
from jettag.models.transformer import PairHead, valid_pairs

REPO = Path(__file__).resolve().parents[1]
EMBED_DIM, N_FEATURES, MAX_TRACKS = 64, 15, 40
MULTIPLICITIES = {"ttbar-like (5-20 tracks)": (5, 20), "Z'-like (15-40 tracks)": (15, 40)}


class DensePairHead(nn.Module):
    """The reference: one hidden layer per pair on x_a + x_b, x_a * x_b and the jet."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.track = nn.Linear(dim, hidden)
        self.product = nn.Linear(dim, hidden, bias=False)
        self.jet = nn.Linear(dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)

    def forward(self, tokens: torch.Tensor, pooled: torch.Tensor, pairs: tuple) -> torch.Tensor:
        """(n_pairs,) logits."""
        jet, first, second = pairs
        per_track = self.track(tokens)
        hidden = (
            per_track[jet, first]
            + per_track[jet, second]
            + self.product(tokens[jet, first] * tokens[jet, second])
            + self.jet(pooled)[jet]
        )
        return self.out(torch.relu(hidden)).squeeze(-1)


def _valid(batch: int, low: int, high: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, high) bool: jets of low..high valid tracks, as a multiplicity bucket holds."""
    n = torch.randint(low, high + 1, (batch,), generator=generator)
    return torch.arange(high)[None] < n[:, None]


def _median_ms(step, repeats: int) -> float:
    """Median wall milliseconds of step() after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def head_step(head: nn.Module, tokens: torch.Tensor, pooled: torch.Tensor, pairs: tuple):
    """A closure: forward and backward of a pair head on fixed inputs."""

    def step() -> None:
        head.zero_grad(set_to_none=True)
        head(tokens, pooled, pairs).sum().backward()

    return step


def model_step(vertexing: bool, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor):
    """A closure: forward and backward of the default-size transformer, with its pair head or
    with the jet loss only."""
    raw = {
        "seed": 1,
        "samples": {"s": {"source": "generate", "process": "ttbar"}},
        "models": {
            "t": {
                "dataset": "s",
                "architecture": "transformer",
                "transformer": {"embed_dim": EMBED_DIM, "num_heads": 4, "num_layers": 3},
                "training": {"track_vertex_weight": 1.5 if vertexing else 0.0},
            }
        },
    }
    model_config = cfg.model_config(cfg.validate_config(raw), "t")
    model = build_model(model_config, N_FEATURES, jets.shape[1], 3).train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        if vertexing:
            logits, _, pair_logits = model.forward_with_tracks(tracks, valid, jets)
            (logits.sum() + pair_logits.sum()).backward()
        else:
            model(tracks, valid, jets).sum().backward()

    return step


def main() -> None:
    """Time the heads and the model at each multiplicity and batch size; print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--output", type=Path,
                        default=REPO / "results" / "benchmarks" / "pair_head.json")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    rows = []
    for name, (low, high) in MULTIPLICITIES.items():
        for batch in args.batch_sizes:
            valid = _valid(batch, low, high, generator)
            pairs = valid_pairs(valid)
            tokens = torch.randn(batch, high, EMBED_DIM, generator=generator)
            pooled = torch.randn(batch, EMBED_DIM, generator=generator)
            tracks = torch.randn(batch, high, N_FEATURES, generator=generator) * valid[..., None]
            jets = torch.randn(batch, 2, generator=generator)
            row = {"multiplicity": name, "batch": batch, "pairs": int(pairs[0].numel())}
            row["dense_head_ms"] = _median_ms(
                head_step(DensePairHead(EMBED_DIM, EMBED_DIM), tokens, pooled, pairs), args.repeats
            )
            row["pair_head_ms"] = _median_ms(
                head_step(PairHead(EMBED_DIM, EMBED_DIM // 2, "relu"), tokens, pooled, pairs),
                args.repeats,
            )
            row["model_jet_loss_ms"] = _median_ms(
                model_step(False, tracks, valid, jets), args.repeats
            )
            row["model_with_pair_head_ms"] = _median_ms(
                model_step(True, tracks, valid, jets), args.repeats
            )
            rows.append(row)
    header = (f"{'multiplicity':26s} {'batch':>5s} {'pairs':>7s} {'dense head':>10s}"
              f" {'pair head':>9s} {'ratio':>5s} {'model':>7s} {'+ pairs':>7s}")  # fmt: skip
    print(f"forward + backward, ms (median of {args.repeats}), {args.threads} threads")
    print(header)
    for r in rows:
        print(
            f"{r['multiplicity']:26s} {r['batch']:5d} {r['pairs']:7d} {r['dense_head_ms']:10.1f}"
            f" {r['pair_head_ms']:9.1f} {r['dense_head_ms'] / r['pair_head_ms']:5.2f}"
            f" {r['model_jet_loss_ms']:7.1f} {r['model_with_pair_head_ms']:7.1f}"
        )
    write_result(args.output, {"threads": args.threads, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
