"""Training stages: networks, the baseline's templates, the learning-rate range test, export."""

from __future__ import annotations

import argparse
import logging

from jettag import config as cfg
from jettag import stages
from jettag.atomic import write_json
from jettag.commands.registry import JobSettings, arg, command, path
from jettag.errors import ConfigError

log = logging.getLogger("jettag")


@command(
    "train", "train one member of a model (or a variant of its training)", stages.train,
    path("--data-dir"), path("--output-dir"), arg("--threads", type=int, default=None),
    path("--pretrained", "best.pt of the pretrained model (transfer/finetune, /frozen)",
         default=None),
    wildcard_help={
        "variant": "member (default), search/nominal, search/<trial>,"
                   " transfer/<scratch|finetune|frozen>/<jets>, ablation/<group>,"
                   " learning_curve/<jets>, study/<study>/<point>, snapshot/<name>"
                   " (config/jobs.py)",
        "member": "ensemble member, K-fold fold or transfer seed",
    },
    needs_torch=True, sections={"model": cfg.ModelConfig},
)  # fmt: skip
def train(args: argparse.Namespace, settings: JobSettings) -> None:
    """Train one member of a model, or one variant of its training (config/jobs.py)."""
    from jettag.config.jobs import run_name
    from jettag.training.loop import train_model

    variant = cfg.parse_variant(args.variant)
    if variant.needs_pretrained != (args.pretrained is not None):
        raise ConfigError(
            f"--variant {variant}: --pretrained is "
            + ("required" if variant.needs_pretrained else "only for transfer/finetune|frozen")
        )
    model = settings.model
    history = train_model(
        run_name(args.model, variant), model, args.data_dir, args.output_dir, settings.seed,
        args.member, threads=args.threads, pretrained=args.pretrained,
        freeze_track_encoder=variant.freezes_track_encoder, snapshots=variant.saves_snapshots,
    )  # fmt: skip
    best = min(history, key=lambda row: row["val_loss"])
    log.info("train %s/%d (%s on %s): %d epochs, best val loss %.4f at epoch %d", args.model,
             args.member, variant, model.dataset, len(history), best["val_loss"],
             best["epoch"])  # fmt: skip


@command("fit-baseline", "fit an IP3D-like baseline's templates", stages.fit_baseline,
         path("--data-dir"), path("--output"),
         sections={"baseline": cfg.BaselineConfig})  # fmt: skip
def fit_baseline(args: argparse.Namespace, settings: JobSettings) -> None:
    """Fit the track templates of an IP3D-like baseline on the training split."""
    from jettag.training.baseline import fit_baseline

    templates = fit_baseline(args.data_dir / "train.h5", settings.baseline)
    write_json(args.output, templates.to_dict())
    log.info("fit-baseline %s: templates of %d track grades (%s)", args.baseline,
             len(templates.grading.grades), templates.grading.name)  # fmt: skip


@command("export-onnx", "export a trained member to ONNX", stages.export_onnx,
         path("--checkpoint", "best.pt of the member"),
         path("--output", "the .onnx file to write"), needs_torch=True)  # fmt: skip
def export_onnx(args: argparse.Namespace, settings: JobSettings) -> None:
    """Export a trained member to ONNX, its input normalisation in the metadata."""
    from jettag.export import export_onnx

    metadata = export_onnx(args.checkpoint, args.output)
    log.info("exported %s to %s: track inputs %s, jet inputs %s", args.checkpoint, args.output,
             metadata["track_features"], metadata["jet_features"])  # fmt: skip


@command("lr-finder", "learning-rate range test of a model", stages.lr_finder,
         path("--data-dir"), path("--output", "JSON"), arg("--threads", type=int, default=None),
         needs_torch=True,
         sections={"model": cfg.ModelConfig, "lr_finder": cfg.LrFinderConfig})  # fmt: skip
def lr_finder(args: argparse.Namespace, settings: JobSettings) -> None:
    """Learning-rate range test of a model."""
    import torch

    from jettag.training.lr_finder import lr_range_test

    if args.threads:
        torch.set_num_threads(args.threads)
    finder = settings.lr_finder
    result = lr_range_test(args.model, settings.model, args.data_dir, settings.seed,
                           finder.min_lr, finder.max_lr, finder.steps,
                           finder.stop_factor)  # fmt: skip
    result.write(args.output)
    suggested = result.suggested
    log.info("lr finder %s: %d steps (%s); steepest descent at %.3g, minimum at %.3g;"
             " configured %.3g", args.model, result.steps_run, result.stopped,
             suggested["steepest"], suggested["minimum"],
             result.configured_learning_rate)  # fmt: skip
