"""Training and inference throughput (jets/s) of the taggers at several sizes.

Synthetic batches with the track-multiplicity distribution of the default ttbar sample
(mean ~7 valid tracks of 40 slots, 15 inputs), so the figure is the model's, not the disk's.
Runs on CUDA when available (bf16 autocast, as training does), else on the CPU.

    python benchmarks/train_throughput.py [--batch-size 1000] [--steps 20] [--repeats 3]

Prints a table (median over repeats) and writes results/benchmarks/train_throughput.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from record import write_result

from jettag import config as cfg
from jettag.models.registry import build_model
from jettag.training.losses import weighted_cross_entropy

REPO = Path(__file__).resolve().parents[1]
N_FEATURES, MAX_TRACKS, N_CLASSES = 15, 40, 3
SIZES = {
    "deepsets_dips": ("deepsets", {"track_layers": [100, 100, 128],
                                   "jet_layers": [100, 100, 100, 30]}),
    "transformer_small": ("transformer", {"embed_dim": 64, "num_heads": 4, "num_layers": 3}),
    "transformer_gn2": ("transformer", {"embed_dim": 256, "num_heads": 8, "num_layers": 4,
                                        "init_layers": [256], "jet_layers": [128, 64]}),
}  # fmt: skip


def _model(architecture: str, sizes: dict) -> torch.nn.Module:
    raw = {
        "samples": {"s": {"source": "generate"}},
        "models": {"m": {"dataset": "s", "architecture": architecture, architecture: sizes}},
    }
    return build_model(cfg.model_config(cfg.validate_config(raw), "m"), N_FEATURES, 0, N_CLASSES)


def _batch(batch_size: int, device: torch.device, generator: torch.Generator):
    n_tracks = torch.poisson(torch.full((batch_size,), 7.0), generator=generator).clamp(
        0, MAX_TRACKS
    )
    valid = torch.arange(MAX_TRACKS)[None, :] < n_tracks[:, None]
    tracks = torch.randn(batch_size, MAX_TRACKS, N_FEATURES, generator=generator) * valid[..., None]
    labels = torch.randint(0, N_CLASSES, (batch_size,), generator=generator)
    jets = torch.zeros(batch_size, 0)
    return [t.to(device) for t in (tracks, valid, jets, labels, torch.ones(batch_size))]


def measure(
    name: str, device: torch.device, batch_size: int, steps: int, compile_model: bool = False
) -> dict[str, float]:
    """Jets/s of training steps (forward, backward, AdamW) and of inference; peak GPU memory.

    compile_model: through torch.compile, as training.compile does (the warm-up steps
    compile; their time is left out and reported as compile_seconds).
    """
    architecture, sizes = SIZES[name]
    torch.manual_seed(0)
    plain = _model(architecture, sizes).to(device)
    model = torch.compile(plain) if compile_model else plain
    optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batch = _batch(batch_size, device, torch.Generator().manual_seed(1))
    class_weights = torch.ones(N_CLASSES, device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train_step():
        with autocast:
            logits = model(*batch[:3])
        loss, _ = weighted_cross_entropy(logits, batch[3], batch[4], class_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer_step():
        with autocast:
            model(*batch[:3])

    out = {"compile_seconds": 0.0}
    for label, step in (("train", train_step), ("inference", infer_step)):
        model.train(label == "train")
        warm_up = time.perf_counter()
        for _ in range(3):
            step()  # warm-up: allocator, kernels, compilation
        if device.type == "cuda":
            torch.cuda.synchronize()
        if compile_model:
            out["compile_seconds"] += time.perf_counter() - warm_up
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[f"{label}_jets_per_s"] = batch_size * steps / (time.perf_counter() - start)
    out["parameters"] = sum(p.numel() for p in plain.parameters())
    out["peak_memory_gib"] = (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    )
    return out


def main() -> int:
    """Measure every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(SIZES))
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({device_name}), torch threads {torch.get_num_threads()}")
    print(f"{'model':<20}{'params':>10}{'train jets/s':>14}{'infer jets/s':>14}")
    rows = []
    for name in args.models:
        runs = [measure(name, device, args.batch_size, args.steps) for _ in range(args.repeats)]
        row = {
            "model": name,
            "parameters": runs[0]["parameters"],
            "train_jets_per_s": round(statistics.median(r["train_jets_per_s"] for r in runs)),
            "inference_jets_per_s": round(
                statistics.median(r["inference_jets_per_s"] for r in runs)
            ),
        }
        rows.append(row)
        print(f"{name:<20}{row['parameters']:>10}{row['train_jets_per_s']:>14}"
              f"{row['inference_jets_per_s']:>14}")  # fmt: skip
    payload = {
        "device": str(device),
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "rows": rows,
    }
    write_result(REPO / "results/benchmarks/train_throughput.json", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
