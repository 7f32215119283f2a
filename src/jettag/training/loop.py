"""The training loop: AdamW, weighted cross-entropy, early stopping, best/last checkpoints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import sys
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from jettag.atomic import write_text
from jettag.config import ModelConfig, TrainingConfig
from jettag.errors import InputError, TrainingInterruptedError
from jettag.io.history import history_csv
from jettag.io.model_inputs import input_spec
from jettag.signals import on_sigterm
from jettag.training.augment import AxisRotation
from jettag.training.checkpoint import load_checkpoint, save_checkpoint
from jettag.training.data import (
    TensorData,
    check_track_origins,
    class_weight_tensor,
    origin_weight_key,
    place_on_device,
    to_device,
)
from jettag.training.diagnosis import diagnose
from jettag.training.diagnosis import summary as diagnosis_summary
from jettag.training.distributed import SINGLE_PROCESS, Ranks, process_group
from jettag.training.losses import weighted_cross_entropy_sum
from jettag.training.network import build_network
from jettag.training.schedules import cycle_ends, make_scheduler
from jettag.training.stream import StreamingSplit, training_data
from jettag.training.transfer import freeze_encoder, load_pretrained

log = logging.getLogger(__name__)


def member_seed(seed: int, model_name: str, member: int) -> int:
    """Seed of one ensemble member, stable across runs."""
    return int(
        np.random.SeedSequence([seed, zlib.crc32(model_name.encode()), member]).generate_state(1)[0]
    )


def select_device(name: str) -> torch.device:
    """CUDA when asked for ('cuda', 'cuda:N') or available under 'auto', else the CPU."""
    if name.startswith("cuda") or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("training.device is 'cuda' but no CUDA device is available")
        return torch.device("cuda" if name == "auto" else name)
    return torch.device("cpu")


def _fingerprint(
    model_config: ModelConfig,
    seed: int,
    data_dir: Path,
    start: Path | None,
    freeze: bool,
    snapshots: bool = False,
) -> str:
    """What a resumed run must share with the interrupted one: config, seed, data, start."""
    h = hashlib.sha256(json.dumps(asdict(model_config), sort_keys=True, default=str).encode())
    h.update(f"{seed}:{freeze}".encode())
    if snapshots:  # only then: the fingerprints of every other run stay as they were
        h.update(b":snapshots")
    if start is not None:
        h.update(start.read_bytes())
    for name in ("norm.yaml", "weights.yaml"):
        h.update((data_dir / name).read_bytes())
    for name in ("train.h5", "val.h5"):
        stat = (data_dir / name).stat()
        h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


@dataclass
class EpochProgress:
    """Where an epoch stands: batches done and the running sums of its metrics."""

    batches_done: int = 0
    loss_sum: float = 0.0
    weight_sum: float = 0.0
    correct: float = 0.0
    jets: int = 0
    origin_loss_sum: float = 0.0
    origin_tracks: int = 0
    seconds: float = 0.0  # wall time spent in the epoch before an interruption

    def result(self) -> tuple[float, float]:
        """(mean weighted loss, accuracy)."""
        return self.loss_sum / max(self.weight_sum, 1e-12), self.correct / max(self.jets, 1)

    def origin_loss(self) -> float:
        """Mean track-origin cross-entropy per labelled track; NaN without the auxiliary task."""
        return self.origin_loss_sum / self.origin_tracks if self.origin_tracks else math.nan


def _l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over weight matrices (biases and norm scales are not penalised)."""
    return sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)


class _Network(nn.Module):
    """One forward giving (class logits, track-origin logits or None), for DDP to wrap.

    DistributedDataParallel synchronises gradients only through its module's forward, so the
    auxiliary-task path must be that forward, not a second method called beside it.
    """

    def __init__(self, model: nn.Module, with_tracks: bool) -> None:
        super().__init__()
        self.model, self.with_tracks = model, with_tracks

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (batch, n_classes), origin logits (n_valid_tracks, n_origins) or None)."""
        if self.with_tracks:
            return self.model.forward_with_tracks(tracks, valid, jets)
        return self.model(tracks, valid, jets), None


def _run_epoch(
    network: nn.Module,
    data: TensorData | StreamingSplit,
    config: TrainingConfig,
    class_weights: torch.Tensor,
    device: torch.device,
    progress: EpochProgress,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    generator: torch.Generator | None = None,
    stop_requested=lambda: False,
    augment: AxisRotation | None = None,
    augment_seed: int = 0,
    frozen: Sequence[nn.Module] = (),
    ranks: Ranks = SINGLE_PROCESS,
    after_step: Callable[[], None] | None = None,
) -> EpochProgress:
    """One pass over the data, from progress.batches_done on; trains when given an optimizer.

    Each process takes its share of every batch; the losses are divided by the batch's total
    weight over all processes, so that the gradients DDP averages are those of the whole
    batch, and the epoch's sums are totals over the processes. Returns early, with the
    progress so far, when stop_requested() becomes true in any process. after_step is called
    after each optimiser and scheduler step (a snapshot ensemble saves its members there).
    """
    training = optimizer is not None
    network.train(training)
    for module in frozen:
        module.eval()
    batch_size = config.batch_size if training else 4 * config.batch_size
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and config.precision == "bf16"
    )
    batches = data.batches(
        batch_size, generator, start_batch=progress.batches_done,
        bucket=config.bucket_by_multiplicity,
    )  # fmt: skip
    with torch.set_grad_enabled(training):
        for tracks, valid, jets, labels, weights, origin in batches:
            if augment is not None:
                # one stream per batch, so a resumed epoch rotates its batches the same way
                batch_generator = torch.Generator().manual_seed(
                    augment_seed + progress.batches_done
                )
                tracks = augment(tracks, valid, batch_generator)
            batch = ranks.shard((tracks, valid, jets, labels, weights, origin))
            tracks, valid, jets, labels, weights, origin = to_device(batch, device)
            if not config.use_sample_weights:
                weights = torch.ones_like(weights)
            with autocast:
                logits, origin_logits = network(tracks, valid, jets)
            loss_sum, local_total = weighted_cross_entropy_sum(
                logits, labels, weights, class_weights
            )
            if config.track_origin_weight > 0:
                origin = origin[valid].long()
                local_labelled = float((origin >= 0).sum())
            else:
                local_labelled = 0.0
            total, n_labelled, stop = ranks.sum(
                [float(local_total), local_labelled, float(training and stop_requested())]
            )
            objective = loss_sum * (ranks.world / max(total, 1e-12))
            origin_sum = torch.zeros((), device=device)
            if n_labelled:  # with the auxiliary task only; no labelled track, no term
                origin_sum = F.cross_entropy(
                    origin_logits.float(), origin, ignore_index=-1, reduction="sum"
                )
                objective = objective + config.track_origin_weight * origin_sum * (
                    ranks.world / n_labelled
                )
            if training:
                if config.l1 > 0:
                    objective = objective + config.l1 * _l1_penalty(network)
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                if config.gradient_clip_norm is not None:
                    nn.utils.clip_grad_norm_(network.parameters(), config.gradient_clip_norm)
                optimizer.step()
                scheduler.step()
                if after_step is not None:
                    after_step()
            loss_total, correct, n_jets, origin_total = ranks.sum(
                [float(loss_sum.detach()), float((logits.argmax(dim=1) == labels).sum()),
                 labels.shape[0], float(origin_sum.detach())]
            )  # fmt: skip
            progress.batches_done += 1
            progress.loss_sum += loss_total
            progress.weight_sum += total
            progress.correct += correct
            progress.jets += int(n_jets)
            progress.origin_loss_sum += origin_total
            progress.origin_tracks += int(n_labelled)
            if stop:
                break
    return progress


def train_model(
    model_name: str,
    model_config: ModelConfig,
    data_dir: Path,
    output_dir: Path,
    seed: int,
    member: int = 0,
    threads: int | None = None,
    pretrained: Path | None = None,
    freeze_track_encoder: bool = False,
    snapshots: bool = False,
) -> list[dict]:
    """Train one member; writes best.pt, last.pt and history.csv. Resumes from last.pt.

    pretrained: start from this checkpoint's weights, on its input normalisation (transfer
    learning); freeze_track_encoder: then train only what follows the per-track network.
    snapshots: a snapshot ensemble (cosine_restarts schedule): the weights at the end of
    cycle k are written to snapshot_<k>.pt (loadable as best.pt is), and every epoch runs
    (early stopping would cut a cycle short).
    Under torchrun, the processes train one model data-parallel and process 0 writes.
    """
    if freeze_track_encoder and pretrained is None:
        raise ValueError("freezing the track encoder needs a pretrained model")
    if snapshots and model_config.training.schedule.name != "cosine_restarts":
        raise ValueError(
            "a snapshot ensemble needs training.schedule.name cosine_restarts, not"
            f" {model_config.training.schedule.name!r}"
        )
    with process_group(model_config.training.device) as (ranks, device_name):
        return _train(
            model_name, model_config, data_dir, output_dir, seed, member, threads, pretrained,
            freeze_track_encoder, ranks, device_name, snapshots,
        )  # fmt: skip


def _train(
    model_name: str,
    model_config: ModelConfig,
    data_dir: Path,
    output_dir: Path,
    seed: int,
    member: int,
    threads: int | None,
    pretrained: Path | None,
    freeze_track_encoder: bool,
    ranks: Ranks,
    device_name: str,
    snapshots: bool = False,
) -> list[dict]:
    """train_model in one process of ranks."""
    config = model_config.training
    if threads or config.num_threads:
        # the job's cores are shared by its processes
        torch.set_num_threads(max(1, (config.num_threads or threads) // ranks.world))
    device = select_device(device_name)
    run_seed = member_seed(seed, model_name, member)
    torch.manual_seed(run_seed)

    start = load_pretrained(pretrained, model_config, data_dir) if pretrained else None
    if start is not None:
        spec = start.spec
    else:
        spec = input_spec(data_dir, model_config.track_inputs, model_config.jet_inputs)
    if config.track_origin_weight > 0:  # k-fold members train on both files
        check_track_origins([data_dir / "train.h5", data_dir / "val.h5"], model_name)
    train, val = training_data(data_dir, spec, model_config, member)
    if config.label_noise > 0:
        if not isinstance(train, TensorData):
            raise ValueError(
                f"{data_dir / 'train.h5'}: training.label_noise needs the split in memory"
                " (training.loader: memory)"
            )
        # the same wrong labels at every epoch and after a resume: seeded by the run
        train = train.with_label_noise(config.label_noise, len(spec.classes), run_seed)
        log.info("label noise: %d of %d training labels replaced by another class",
                 round(config.label_noise * len(train)), len(train))  # fmt: skip
    if len(train) < config.batch_size:
        raise ValueError(
            f"{data_dir / 'train.h5'}: {len(train)} training jets, fewer than one batch"
            f" ({config.batch_size}); lower training.batch_size or make more jets"
        )
    placed = place_on_device([train, val], device, config.data_on_device)
    if placed[0] is not train:
        log.info("train and val splits held on %s (%d jets)", device, len(train) + len(val))
    train, val = placed
    class_weights = class_weight_tensor(
        data_dir, config.use_class_weights, len(spec.classes), device
    )

    model = build_network(model_config, spec, data_dir)
    frozen: list[nn.Module] = []
    if start is not None:
        model.load_state_dict(start.model_state)
        if freeze_track_encoder:
            frozen = freeze_encoder(model)
    model.to(device)
    network = _Network(model, with_tracks=config.track_origin_weight > 0)
    trained = network
    if ranks.distributed:
        trained = nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )
    evaluated = network
    if config.compile:  # the weights stay those of model: checkpoints do not change
        trained, evaluated = torch.compile(trained), torch.compile(network)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )  # fmt: skip
    augment = AxisRotation(spec) if config.rotate_about_jet_axis else None
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    scheduler = make_scheduler(optimizer, total_steps, config.schedule)
    snapshot_steps = cycle_ends(total_steps, config.schedule) if snapshots else []
    output_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(
        model_config, run_seed, data_dir, pretrained, freeze_track_encoder, snapshots
    )
    state = _resume_state(output_dir / "last.pt", fingerprint)
    history: list[dict] = []
    best_val, stale_epochs, start_epoch = math.inf, 0, 0
    best: dict | None = None  # best.pt's content, also kept in last.pt
    taken: list[dict] = []  # the snapshots so far, also kept in last.pt
    progress = EpochProgress()
    if state is not None:
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        torch.set_rng_state(state["torch_rng_state"])
        if device.type == "cuda" and state.get("cuda_rng_state") is not None:
            torch.cuda.set_rng_state(state["cuda_rng_state"], device)
        history, best_val = state["history"], state["best_val_loss"]
        stale_epochs, start_epoch = state["stale_epochs"], state["epoch"]
        progress = EpochProgress(**state["epoch_progress"])
        log.info("resuming %s/%d at epoch %d, batch %d", model_name, member, start_epoch,
                 progress.batches_done)  # fmt: skip
        best = state.get("best_checkpoint")  # None in a last.pt from before it was kept
        taken = state.get("snapshots", [])
        # Snakemake deletes a rerun job's outputs, best.pt and the snapshots included
        if ranks.is_main:
            if best is not None:
                save_checkpoint(output_dir / "best.pt", best)
            for k, snapshot in enumerate(taken):
                save_checkpoint(output_dir / snapshot_name(k), snapshot)

    meta = {
        "model_name": model_name,
        "member": member,
        "model_config": json.loads(json.dumps(asdict(model_config))),
        "inputs": spec.to_dict(),
        "pretrained": None if pretrained is None else str(pretrained),
        "frozen_track_encoder": freeze_track_encoder,
    }

    def save_last(epoch: int, progress: EpochProgress) -> None:
        """The whole training state: epoch and batch position, weights, optimiser, RNG."""
        if not ranks.is_main:
            return
        save_checkpoint(
            output_dir / "last.pt",
            {
                **meta,
                "fingerprint": fingerprint,
                "epoch": epoch,
                "epoch_progress": asdict(progress),
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict(),
                "torch_rng_state": torch.get_rng_state(),
                # dropout on a GPU draws from its own generator
                "cuda_rng_state": (
                    torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                ),
                "history": history,
                "best_val_loss": best_val,
                "best_checkpoint": best,
                "snapshots": taken,
                "stale_epochs": stale_epochs,
                "finished": False,
            },
        )

    epochs = tqdm(
        range(start_epoch, config.epochs), desc=f"train {model_name}/{member}", unit="epoch",
        initial=start_epoch, total=config.epochs,
        disable=not (sys.stderr.isatty() and ranks.is_main),
    )  # fmt: skip

    def take_snapshot(epoch: int) -> None:
        """At the end of a cycle (a step count of snapshot_steps), write the next snapshot."""
        if scheduler.last_epoch not in snapshot_steps:
            return
        k = snapshot_steps.index(scheduler.last_epoch)
        snapshot = {**meta, "epoch": epoch, "step": scheduler.last_epoch, "cycle": k,
                    "model_state": {key: v.detach().clone()
                                    for key, v in model.state_dict().items()}}  # fmt: skip
        taken.append(snapshot)
        if ranks.is_main:
            save_checkpoint(output_dir / snapshot_name(k), snapshot)
        log.info("%s/%d: cycle %d of %d ends at step %d (epoch %d): %s", model_name,
                 member, k + 1, len(snapshot_steps), scheduler.last_epoch, epoch,
                 snapshot_name(k))  # fmt: skip

    with _sigterm_flag() as stop_requested:
        for epoch in epochs:
            if stale_epochs >= config.patience and not snapshots:
                break
            t0 = time.perf_counter()
            generator = torch.Generator().manual_seed(run_seed + epoch)
            progress = _run_epoch(
                trained, train, config, class_weights, device, progress, optimizer, scheduler,
                generator, stop_requested, augment, (run_seed + epoch) * 1_000_003, frozen,
                ranks, (lambda e=epoch: take_snapshot(e)) if snapshots else None,
            )  # fmt: skip
            if progress.batches_done < steps_per_epoch:  # a process was asked to stop
                progress.seconds += time.perf_counter() - t0
                save_last(epoch, progress)
                raise TrainingInterruptedError(
                    f"SIGTERM: saved {output_dir / 'last.pt'} at epoch {epoch}, batch"
                    f" {progress.batches_done}; rerun the same command to resume"
                )
            train_loss, train_acc = progress.result()
            val_progress = _run_epoch(
                evaluated, val, config, class_weights, device, EpochProgress(), ranks=ranks
            )
            val_loss, val_acc = val_progress.result()
            # a resumed epoch counts its time before the interruption too (not the restart)
            epoch_seconds = progress.seconds + time.perf_counter() - t0
            if config.track_origin_weight > 0:
                _check_origin_losses(progress, val_progress, data_dir, model_name)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "train_accuracy": train_acc,
                    "val_accuracy": val_acc,
                    "learning_rate": optimizer.param_groups[0]["lr"],
                    "epoch_seconds": epoch_seconds,
                    "train_track_origin_loss": progress.origin_loss(),
                    "val_track_origin_loss": val_progress.origin_loss(),
                    "wall_seconds": _wall_seconds(history) + epoch_seconds,
                }
            )
            epochs.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best_val - config.min_delta:
                best_val, stale_epochs = val_loss, 0
                best = {**meta, "epoch": epoch, "val_loss": val_loss,
                        "model_state": {k: v.detach().clone()
                                        for k, v in model.state_dict().items()}}  # fmt: skip
                if ranks.is_main:
                    save_checkpoint(output_dir / "best.pt", best)
            else:
                stale_epochs += 1
            progress = EpochProgress()
            save_last(epoch + 1, progress)
            if ranks.is_main:
                write_text(output_dir / "history.csv", history_csv(history))
    if len(taken) != len(snapshot_steps):  # a bug, not a config: every cycle ends in the run
        raise RuntimeError(f"{len(taken)} snapshots written of {len(snapshot_steps)} cycles")
    if ranks.is_main:
        _mark_finished(output_dir / "last.pt")
        write_text(output_dir / "history.csv", history_csv(history))
        _report_diagnosis(history, f"{model_name}/{member}")
    return history


def snapshot_name(cycle: int) -> str:
    """File name of the snapshot taken at the end of a cycle (0-based), beside best.pt."""
    return f"snapshot_{cycle}.pt"


def _wall_seconds(history: list[dict]) -> float:
    """Training time so far: the sum of the epochs' times (the last row's running total)."""
    if not history:
        return 0.0
    return history[-1].get("wall_seconds", sum(row["epoch_seconds"] for row in history))


def _report_diagnosis(history: list[dict], run: str) -> None:
    """Log the loss curves' diagnosis (the loss plot's job writes it to results/diagnosis/).

    Not written beside history.csv: a file the rule does not declare is one Snakemake
    neither tracks nor cleans, and declaring it would retrain every finished model.
    """
    result = diagnose(history)
    advice = f"; {result['advice']}" if result["advice"] else ""
    log.info("%s loss curves: %s%s", run, diagnosis_summary(result), advice)


def _check_origin_losses(
    train: EpochProgress, val: EpochProgress, data_dir: Path, model_name: str
) -> None:
    """An epoch of the track-origin task without a labelled track has no loss: stop, not NaN."""
    for name, progress in (("training", train), ("validation", val)):
        if progress.origin_tracks == 0:
            raise InputError(
                f"{data_dir}: the {name} jets have no track with a truth origin (all"
                " 'ftagTruthOriginLabel' -1), so the track-origin loss is undefined; set"
                f" {origin_weight_key(model_name)} to 0"
            )


@contextlib.contextmanager
def _sigterm_flag():
    """Turn SIGTERM into a flag the loop checks between batches (main thread only)."""
    received = threading.Event()
    with on_sigterm(lambda signum, frame: received.set()):
        yield received.is_set


def _resume_state(path: Path, fingerprint: str) -> dict | None:
    """The state of an interrupted run with the same config and data, else None."""
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("fingerprint") != fingerprint or state.get("finished", True):
        log.info("%s is from another or a finished run; starting afresh", path)
        return None
    return state


def _mark_finished(path: Path) -> None:
    """Flag last.pt as the end of a complete run, so a rerun starts afresh."""
    if path.exists():
        state = load_checkpoint(path)
        state["finished"] = True
        save_checkpoint(path, state)
