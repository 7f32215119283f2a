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
from dataclasses import asdict, dataclass, field
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
from jettag.io.model_inputs import InputSpec, input_spec
from jettag.signals import on_sigterm
from jettag.training.augment import AxisRotation
from jettag.training.checkpoint import load_checkpoint, save_checkpoint
from jettag.training.data import (
    TRACK_VERTEX_TASK,
    TensorData,
    check_track_labels,
    check_track_origins,
    class_weight_tensor,
    origin_weight_key,
    place_on_device,
    to_device,
)
from jettag.training.diagnosis import diagnose
from jettag.training.diagnosis import summary as diagnosis_summary
from jettag.training.distributed import Ranks, process_group
from jettag.training.losses import (
    balanced_pair_loss,
    pair_loss_sums,
    same_vertex_pairs,
    weighted_cross_entropy_sum,
)
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
    # the vertexing task's binary cross-entropy summed over same-vertex and other pairs
    vertex_same_loss: float = 0.0
    vertex_other_loss: float = 0.0
    vertex_same_pairs: int = 0
    vertex_other_pairs: int = 0
    seconds: float = 0.0  # wall time spent in the epoch before an interruption

    def result(self) -> tuple[float, float]:
        """(mean weighted loss, accuracy)."""
        return self.loss_sum / max(self.weight_sum, 1e-12), self.correct / max(self.jets, 1)

    def origin_loss(self) -> float:
        """Mean track-origin cross-entropy per labelled track; NaN without the auxiliary task."""
        return self.origin_loss_sum / self.origin_tracks if self.origin_tracks else math.nan

    def vertex_loss(self) -> float:
        """Class-balanced track-pair (same vertex) loss; NaN without the auxiliary task."""
        if self.vertex_same_pairs + self.vertex_other_pairs == 0:
            return math.nan
        return float(
            balanced_pair_loss(self.vertex_same_loss, self.vertex_other_loss,
                               self.vertex_same_pairs, self.vertex_other_pairs)
        )  # fmt: skip


def _l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over weight matrices (biases and norm scales are not penalised)."""
    return sum(p.abs().sum() for p in model.parameters() if p.ndim > 1)


class _Network(nn.Module):
    """One forward giving (class logits, origin logits or None, pair logits or None).

    DistributedDataParallel synchronises gradients only through its module's forward, so the
    auxiliary-task path must be that forward, not a second method called beside it.
    """

    def __init__(self, model: nn.Module, with_tracks: bool) -> None:
        super().__init__()
        self.model, self.with_tracks = model, with_tracks

    def forward(
        self, tracks: torch.Tensor, valid: torch.Tensor, jets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(logits (batch, n_classes), origin logits (n_valid_tracks, n_origins) or None,
        same-vertex logits (n_pairs,) or None); DDP wraps this, so it is one forward."""
        if self.with_tracks:
            return self.model.forward_with_tracks(tracks, valid, jets)
        return self.model(tracks, valid, jets), None, None


@dataclass
class TrainingState:
    """Where a run stands between epochs: what last.pt keeps, so a killed run resumes."""

    epoch: int = 0  # the epoch to run next
    progress: EpochProgress = field(default_factory=EpochProgress)  # of that epoch, if begun
    history: list[dict] = field(default_factory=list)
    best_val_loss: float = math.inf
    stale_epochs: int = 0
    best: dict | None = None  # best.pt's content, kept so a rerun can write it again
    snapshots: list[dict] = field(default_factory=list)  # the snapshots taken so far

    def to_checkpoint(self) -> dict:
        """The run's part of last.pt (the weights, optimiser and RNG states are the trainer's)."""
        return {
            "epoch": self.epoch,
            "epoch_progress": asdict(self.progress),
            "history": self.history,
            "best_val_loss": self.best_val_loss,
            "best_checkpoint": self.best,
            "snapshots": self.snapshots,
            "stale_epochs": self.stale_epochs,
        }

    @classmethod
    def from_checkpoint(cls, state: dict) -> TrainingState:
        """Inverse of to_checkpoint; a last.pt from before best and snapshots were kept has none."""
        return cls(
            epoch=state["epoch"], progress=EpochProgress(**state["epoch_progress"]),
            history=state["history"], best_val_loss=state["best_val_loss"],
            stale_epochs=state["stale_epochs"], best=state.get("best_checkpoint"),
            snapshots=state.get("snapshots", []),
        )  # fmt: skip


class Trainer:
    """One run's training: its data, network, optimiser and schedule, and its TrainingState.

    Built in the order that draws the run's random numbers (seed, data, weights), so that a
    run, and a run resumed from last.pt, are bit-identical to before this class existed.
    """

    def __init__(
        self,
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
    ) -> None:
        config = self.config = model_config.training
        self.name, self.member, self.ranks = model_name, member, ranks
        self.data_dir, self.output_dir, self.takes_snapshots = data_dir, output_dir, snapshots
        if threads or config.num_threads:
            # the job's cores are shared by its processes
            torch.set_num_threads(max(1, (config.num_threads or threads) // ranks.world))
        self.device = device = select_device(device_name)
        self.run_seed = member_seed(seed, model_name, member)
        torch.manual_seed(self.run_seed)

        start = load_pretrained(pretrained, model_config, data_dir) if pretrained else None
        if start is not None:
            spec = start.spec
        else:
            spec = input_spec(data_dir, model_config.track_inputs, model_config.jet_inputs)
        splits = [data_dir / "train.h5", data_dir / "val.h5"]  # k-fold members use both
        if config.track_origin_weight > 0:
            check_track_origins(splits, model_name)
        if config.track_vertex_weight > 0:
            check_track_labels(splits, model_name, TRACK_VERTEX_TASK)
        self.train_data, self.val_data = self._data(spec, model_config)
        self.class_weights = class_weight_tensor(
            data_dir, config.use_class_weights, len(spec.classes), device
        )

        model = self.model = build_network(model_config, spec, data_dir)
        self.frozen: list[nn.Module] = []
        if start is not None:
            model.load_state_dict(start.model_state)
            if freeze_track_encoder:
                self.frozen = freeze_encoder(model)
        model.to(device)
        network = _Network(
            model, with_tracks=config.track_origin_weight > 0 or config.track_vertex_weight > 0
        )
        self.trained = network
        if ranks.distributed:
            self.trained = nn.parallel.DistributedDataParallel(
                network, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.evaluated = network
        if config.compile:  # the weights stay those of model: checkpoints do not change
            self.trained, self.evaluated = torch.compile(self.trained), torch.compile(network)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )  # fmt: skip
        self.augment = AxisRotation(spec) if config.rotate_about_jet_axis else None
        self.steps_per_epoch = math.ceil(len(self.train_data) / config.batch_size)
        total_steps = config.epochs * self.steps_per_epoch
        self.scheduler = make_scheduler(self.optimizer, total_steps, config.schedule)
        self.snapshot_steps = cycle_ends(total_steps, config.schedule) if snapshots else []
        output_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = _fingerprint(
            model_config, self.run_seed, data_dir, pretrained, freeze_track_encoder, snapshots
        )
        self.meta = {
            "model_name": model_name,
            "member": member,
            "model_config": json.loads(json.dumps(asdict(model_config))),
            "inputs": spec.to_dict(),
            "pretrained": None if pretrained is None else str(pretrained),
            "frozen_track_encoder": freeze_track_encoder,
        }
        self.state = TrainingState()

    def _data(
        self, spec: InputSpec, model_config: ModelConfig
    ) -> tuple[TensorData | StreamingSplit, TensorData | StreamingSplit]:
        """The training and validation splits, label noise added, on the device if asked."""
        config, train_file = self.config, self.data_dir / "train.h5"
        train, val = training_data(self.data_dir, spec, model_config, self.member)
        if config.label_noise > 0:
            if not isinstance(train, TensorData):
                raise ValueError(
                    f"{train_file}: training.label_noise needs the split in memory"
                    " (training.loader: memory)"
                )
            # the same wrong labels at every epoch and after a resume: seeded by the run
            train = train.with_label_noise(config.label_noise, len(spec.classes), self.run_seed)
            log.info("label noise: %d of %d training labels replaced by another class",
                     round(config.label_noise * len(train)), len(train))  # fmt: skip
        if len(train) < config.batch_size:
            raise ValueError(
                f"{train_file}: {len(train)} training jets, fewer than one batch"
                f" ({config.batch_size}); lower training.batch_size or make more jets"
            )
        placed = place_on_device([train, val], self.device, config.data_on_device)
        if placed[0] is not train:
            log.info("train and val splits held on %s (%d jets)", self.device,
                     len(train) + len(val))  # fmt: skip
        return placed[0], placed[1]

    def resume(self) -> None:
        """Continue an interrupted run with the same fingerprint from last.pt, if there is one."""
        state = _resume_state(self.output_dir / "last.pt", self.fingerprint)
        if state is None:
            return
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.scheduler.load_state_dict(state["scheduler_state"])
        torch.set_rng_state(state["torch_rng_state"])
        if self.device.type == "cuda" and state.get("cuda_rng_state") is not None:
            torch.cuda.set_rng_state(state["cuda_rng_state"], self.device)
        self.state = TrainingState.from_checkpoint(state)
        log.info("resuming %s/%d at epoch %d, batch %d", self.name, self.member,
                 self.state.epoch, self.state.progress.batches_done)  # fmt: skip
        # Snakemake deletes a rerun job's outputs, best.pt and the snapshots included
        if self.ranks.is_main:
            if self.state.best is not None:
                save_checkpoint(self.output_dir / "best.pt", self.state.best)
            for k, snapshot in enumerate(self.state.snapshots):
                save_checkpoint(self.output_dir / snapshot_name(k), snapshot)

    def save_last(self) -> None:
        """The whole training state: epoch and batch position, weights, optimiser, RNG."""
        if not self.ranks.is_main:
            return
        device = self.device
        save_checkpoint(
            self.output_dir / "last.pt",
            {
                **self.meta,
                "fingerprint": self.fingerprint,
                **self.state.to_checkpoint(),
                "model_state": self.model.state_dict(),
                "optimizer_state": self.optimizer.state_dict(),
                "scheduler_state": self.scheduler.state_dict(),
                "torch_rng_state": torch.get_rng_state(),
                # dropout on a GPU draws from its own generator
                "cuda_rng_state": (
                    torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                ),
                "finished": False,
            },
        )

    def _weights(self) -> dict:
        """A copy of the model's weights, as best.pt and the snapshots hold them."""
        return {key: v.detach().clone() for key, v in self.model.state_dict().items()}

    def snapshot(self, epoch: int) -> None:
        """At the end of a cycle (a step count of snapshot_steps), write the next snapshot."""
        step = self.scheduler.last_epoch
        if step not in self.snapshot_steps:
            return
        k = self.snapshot_steps.index(step)
        snapshot = {**self.meta, "epoch": epoch, "step": step, "cycle": k,
                    "model_state": self._weights()}  # fmt: skip
        self.state.snapshots.append(snapshot)
        if self.ranks.is_main:
            save_checkpoint(self.output_dir / snapshot_name(k), snapshot)
        log.info("%s/%d: cycle %d of %d ends at step %d (epoch %d): %s", self.name, self.member,
                 k + 1, len(self.snapshot_steps), step, epoch, snapshot_name(k))  # fmt: skip

    def run_epoch(
        self, epoch: int | None, progress: EpochProgress, stop_requested=lambda: False
    ) -> EpochProgress:
        """One pass over the data, from progress.batches_done on: a training pass of `epoch`,
        or, with epoch None, the validation pass.

        Each process takes its share of every batch; the losses are divided by the batch's
        total weight over all processes, so that the gradients DDP averages are those of the
        whole batch, and the epoch's sums are totals over the processes. Returns early, with
        the progress so far, when stop_requested() becomes true in any process. A snapshot
        ensemble saves its members after the optimiser and scheduler step that ends a cycle.
        """
        config, device, ranks = self.config, self.device, self.ranks
        training = epoch is not None
        network = self.trained if training else self.evaluated
        network.train(training)
        for module in self.frozen:
            module.eval()
        data = self.train_data if training else self.val_data
        batch_size = config.batch_size if training else 4 * config.batch_size
        generator = torch.Generator().manual_seed(self.run_seed + epoch) if training else None
        augment = self.augment if training else None
        augment_seed = (self.run_seed + epoch) * 1_000_003 if training else 0
        autocast = torch.autocast(
            "cuda", dtype=torch.bfloat16,
            enabled=device.type == "cuda" and config.precision == "bf16",
        )  # fmt: skip
        batches = data.batches(
            batch_size, generator, start_batch=progress.batches_done,
            bucket=config.bucket_by_multiplicity,
        )  # fmt: skip
        with torch.set_grad_enabled(training):
            for tracks, valid, jets, labels, weights, origin, vertex in batches:
                if augment is not None:
                    # one stream per batch, so a resumed epoch rotates its batches the same way
                    batch_generator = torch.Generator().manual_seed(
                        augment_seed + progress.batches_done
                    )
                    tracks = augment(tracks, valid, batch_generator)
                batch = ranks.shard((tracks, valid, jets, labels, weights, origin, vertex))
                tracks, valid, jets, labels, weights, origin, vertex = to_device(batch, device)
                if not config.use_sample_weights:
                    weights = torch.ones_like(weights)
                with autocast:
                    logits, origin_logits, pair_logits = network(tracks, valid, jets)
                loss_sum, local_total = weighted_cross_entropy_sum(
                    logits, labels, weights, self.class_weights
                )
                if config.track_origin_weight > 0:
                    origin = origin[valid].long()
                    local_labelled = float((origin >= 0).sum())
                else:
                    local_labelled = 0.0
                same_sum = other_sum = torch.zeros((), device=device)
                local_same = local_other = 0.0
                if config.track_vertex_weight > 0:
                    same = same_vertex_pairs(vertex, valid)
                    same_sum, other_sum = pair_loss_sums(pair_logits, same)
                    local_same = float(same.sum())
                    local_other = same.numel() - local_same
                total, n_labelled, n_same, n_other, stop = ranks.sum(
                    [float(local_total), local_labelled, local_same, local_other,
                     float(training and stop_requested())]
                )  # fmt: skip
                objective = loss_sum * (ranks.world / max(total, 1e-12))
                origin_sum = torch.zeros((), device=device)
                if n_labelled:  # with the auxiliary task only; no labelled track, no term
                    origin_sum = F.cross_entropy(
                        origin_logits.float(), origin, ignore_index=-1, reduction="sum"
                    )
                    objective = objective + config.track_origin_weight * origin_sum * (
                        ranks.world / n_labelled
                    )
                if n_same + n_other:  # the vertexing task; a batch of 1-track jets has no pair
                    objective = objective + config.track_vertex_weight * ranks.world * (
                        balanced_pair_loss(same_sum, other_sum, n_same, n_other)
                    )
                if training:
                    self._step(network, objective, epoch)
                loss_total, correct, n_jets, origin_total, same_total, other_total = ranks.sum(
                    [float(loss_sum.detach()), float((logits.argmax(dim=1) == labels).sum()),
                     labels.shape[0], float(origin_sum.detach()), float(same_sum.detach()),
                     float(other_sum.detach())]
                )  # fmt: skip
                progress.batches_done += 1
                progress.loss_sum += loss_total
                progress.weight_sum += total
                progress.correct += correct
                progress.jets += int(n_jets)
                progress.origin_loss_sum += origin_total
                progress.origin_tracks += int(n_labelled)
                progress.vertex_same_loss += same_total
                progress.vertex_other_loss += other_total
                progress.vertex_same_pairs += int(n_same)
                progress.vertex_other_pairs += int(n_other)
                if stop:
                    break
        return progress

    def _step(self, network: nn.Module, objective: torch.Tensor, epoch: int) -> None:
        """One optimiser and scheduler step (L1 and gradient clipping as configured)."""
        config = self.config
        if config.l1 > 0:
            objective = objective + config.l1 * _l1_penalty(network)
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if config.gradient_clip_norm is not None:
            nn.utils.clip_grad_norm_(network.parameters(), config.gradient_clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.takes_snapshots:
            self.snapshot(epoch)

    def end_epoch(self, epoch: int, val: EpochProgress, epoch_seconds: float) -> None:
        """Record a finished epoch: its history row, best.pt if it improved, then last.pt."""
        state, config = self.state, self.config
        train_loss, train_acc = state.progress.result()
        val_loss, val_acc = val.result()
        _check_track_task_losses(config, state.progress, val, self.data_dir, self.name)
        state.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "train_accuracy": train_acc,
                "val_accuracy": val_acc,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "epoch_seconds": epoch_seconds,
                "train_track_origin_loss": state.progress.origin_loss(),
                "val_track_origin_loss": val.origin_loss(),
                "train_track_vertex_loss": state.progress.vertex_loss(),
                "val_track_vertex_loss": val.vertex_loss(),
                "wall_seconds": _wall_seconds(state.history) + epoch_seconds,
            }
        )
        if val_loss < state.best_val_loss - config.min_delta:
            state.best_val_loss, state.stale_epochs = val_loss, 0
            state.best = {**self.meta, "epoch": epoch, "val_loss": val_loss,
                          "model_state": self._weights()}  # fmt: skip
            if self.ranks.is_main:
                save_checkpoint(self.output_dir / "best.pt", state.best)
        else:
            state.stale_epochs += 1
        state.epoch, state.progress = epoch + 1, EpochProgress()
        self.save_last()
        if self.ranks.is_main:
            write_text(self.output_dir / "history.csv", history_csv(state.history))

    def fit(self) -> list[dict]:
        """Train to the last epoch or early stopping; on SIGTERM save last.pt and raise."""
        config, state = self.config, self.state
        epochs = tqdm(
            range(state.epoch, config.epochs), desc=f"train {self.name}/{self.member}",
            unit="epoch", initial=state.epoch, total=config.epochs,
            disable=not (sys.stderr.isatty() and self.ranks.is_main),
        )  # fmt: skip
        with _sigterm_flag() as stop_requested:
            for epoch in epochs:
                if state.stale_epochs >= config.patience and not self.takes_snapshots:
                    break
                t0 = time.perf_counter()
                state.progress = self.run_epoch(epoch, state.progress, stop_requested)
                if state.progress.batches_done < self.steps_per_epoch:  # asked to stop
                    state.progress.seconds += time.perf_counter() - t0
                    state.epoch = epoch
                    self.save_last()
                    raise TrainingInterruptedError(
                        f"SIGTERM: saved {self.output_dir / 'last.pt'} at epoch {epoch}, batch"
                        f" {state.progress.batches_done}; rerun the same command to resume"
                    )
                val = self.run_epoch(None, EpochProgress())
                # a resumed epoch counts its time before the interruption too (not the restart)
                self.end_epoch(epoch, val, state.progress.seconds + time.perf_counter() - t0)
                epochs.set_postfix(train=f"{state.history[-1]['train_loss']:.4f}",
                                   val=f"{state.history[-1]['val_loss']:.4f}")  # fmt: skip
        if len(state.snapshots) != len(self.snapshot_steps):  # a bug: every cycle ends in the run
            raise RuntimeError(
                f"{len(state.snapshots)} snapshots written of {len(self.snapshot_steps)} cycles"
            )
        if self.ranks.is_main:
            _mark_finished(self.output_dir / "last.pt")
            write_text(self.output_dir / "history.csv", history_csv(state.history))
            _report_diagnosis(state.history, f"{self.name}/{self.member}")
        return state.history


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
        trainer = Trainer(
            model_name, model_config, data_dir, output_dir, seed, member, threads, pretrained,
            freeze_track_encoder, ranks, device_name, snapshots,
        )  # fmt: skip
        trainer.resume()
        return trainer.fit()


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


def _check_track_task_losses(
    config: TrainingConfig,
    train: EpochProgress,
    val: EpochProgress,
    data_dir: Path,
    model_name: str,
) -> None:
    """An epoch of an auxiliary track task with nothing to learn has no loss: stop, not NaN.

    The track-origin task needs a labelled track, the vertexing task a pair of valid tracks
    (a split of one-track jets has none).
    """
    for name, progress in (("training", train), ("validation", val)):
        if config.track_origin_weight > 0 and progress.origin_tracks == 0:
            raise InputError(
                f"{data_dir}: the {name} jets have no track with a truth origin (all"
                " 'ftagTruthOriginLabel' -1), so the track-origin loss is undefined; set"
                f" {origin_weight_key(model_name)} to 0"
            )
        if config.track_vertex_weight > 0 and not (
            progress.vertex_same_pairs + progress.vertex_other_pairs
        ):
            raise InputError(
                f"{data_dir}: the {name} jets have no pair of valid tracks (no jet with two"
                " tracks), so the track-vertexing loss is undefined; set"
                f" {TRACK_VERTEX_TASK.weight_key(model_name)} to 0"
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
