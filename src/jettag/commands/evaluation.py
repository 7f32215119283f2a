"""Scoring and evaluation stages: every number the plots draw."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jettag import config as cfg
from jettag import stages
from jettag.atomic import write_text
from jettag.commands.registry import JobSettings, command, path, paths
from jettag.errors import ConfigError

if TYPE_CHECKING:
    from jettag.evaluation.discriminant import Discriminant

log = logging.getLogger("jettag")
# the evaluation keys a stage reads, typed as the evaluation section types them
EVALUATION = {"evaluation": cfg.EvaluationConfig}


def discriminant(settings: JobSettings) -> Discriminant:
    """The stage settings' evaluation.discriminant."""
    from jettag.evaluation.discriminant import Discriminant

    return Discriminant.from_dict(settings.evaluation.discriminant)


def named_paths(items: Sequence[str]) -> dict[str, Path]:
    """NAME=PATH arguments as a mapping."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"expected NAME=PATH, got '{item}'")
        out[name] = Path(value)
    return out


@command("predict", "score the test split with a tagger", stages.predict,
         path("--test"), path("--output"),
         paths("members", "best.pt of each member, or templates"), needs_torch=True)  # fmt: skip
def predict(args: argparse.Namespace, settings: JobSettings) -> None:
    """Score the test split with a model's members or a baseline."""
    from jettag.evaluation.predict import predict

    predict(args.tagger, args.test, args.members, settings.kind, args.output)


@command("evaluate", "metrics of one tagger", stages.evaluate,
         path("--predictions"), path("--output"), sections=EVALUATION)  # fmt: skip
def evaluate(args: argparse.Namespace, settings: JobSettings) -> None:
    """Metrics (AUC, working points, ROC) of one tagger's predictions."""
    from jettag.evaluation.evaluate import evaluate, summary_line

    evaluation = settings.evaluation
    metrics = evaluate(args.predictions, discriminant(settings), evaluation.working_points,
                       settings.evaluation.roc_b_efficiencies)  # fmt: skip
    metrics.write(args.output)
    log.info("evaluate %s", summary_line(metrics))


@command("working-points", "working-point table of several taggers", stages.working_points,
         path("--output-json"), path("--output-md"), paths("predictions"),
         wildcard_help={"dataset": "the dataset the taggers are tested on"},
         sections=EVALUATION)  # fmt: skip
def working_points(args: argparse.Namespace, settings: JobSettings) -> None:
    """Table of cuts, efficiencies and rejections at every working point, several taggers."""
    from jettag.evaluation.working_points import working_point_table

    evaluation = settings.evaluation
    table = working_point_table(
        args.predictions, discriminant(settings), evaluation.working_points,
        reference=settings.reference,
        roc_efficiencies=evaluation.roc_b_efficiencies.efficiencies(),
        replicas=evaluation.bootstrap_replicas, seed=settings.seed,
    )  # fmt: skip
    table.write(args.output_json)
    write_text(args.output_md, table.markdown())


@command("multiclass", "confusion matrix and binary tasks of a tagger", stages.multiclass,
         path("--predictions"), path("--output", "JSON"), sections=EVALUATION)  # fmt: skip
def multiclass(args: argparse.Namespace, settings: JobSettings) -> None:
    """Confusion matrix and the class set's binary tasks of one tagger's predictions."""
    from jettag.evaluation.discriminant import Discriminant
    from jettag.evaluation.multiclass import multiclass_summary

    result = multiclass_summary(
        args.predictions, [Discriminant.from_dict(t) for t in settings.tasks],
        settings.evaluation.multiclass_efficiency,
        settings.evaluation.roc_b_efficiencies.efficiencies(),
    )  # fmt: skip
    result.write(args.output)
    log.info("multiclass %s: accuracy %.3f; AUC %s", result.tagger, result.accuracy,
             {t["name"]: round(min(t["auc"].values()), 4) for t in result.tasks})  # fmt: skip


@command("fraction-scan", "rejections vs a background's fraction", stages.fraction_scan,
         path("--output", "JSON"), paths("predictions"),
         wildcard_help={"dataset": "the dataset the taggers are tested on"},
         sections=EVALUATION)  # fmt: skip
def fraction_scan(args: argparse.Namespace, settings: JobSettings) -> None:
    """Rejections of every tagger of a dataset as one background fraction is scanned."""
    from jettag.evaluation.fraction_scan import fraction_scan

    scan = settings.evaluation.fraction_scan
    fraction_scan(args.predictions, discriminant(settings), scan.background, scan.fractions,
                  scan.working_point).write(args.output)  # fmt: skip


@command("performance", "efficiency vs pT and D_b histograms of a tagger", stages.performance,
         path("--predictions"), path("--output-pt", "JSON: efficiency vs pT"),
         path("--output-scores", "JSON: D_b histograms"), sections=EVALUATION)  # fmt: skip
def performance(args: argparse.Namespace, settings: JobSettings) -> None:
    """Efficiency and rejection vs jet pT at a working point, and D_b per class, of a tagger."""
    from jettag.evaluation.working_points import efficiency_vs_pt, score_histograms

    evaluation = settings.evaluation
    efficiency_vs_pt(args.predictions, discriminant(settings), evaluation.pt_working_point,
                     evaluation.pt_bins_gev).write(args.output_pt)  # fmt: skip
    score_histograms(args.predictions, discriminant(settings),
                     evaluation.working_points).write(args.output_scores)  # fmt: skip


@command("vertexing", "vertex finding of a model's track-pair head", stages.vertexing,
         path("--checkpoint", "best.pt of the model's first member"), path("--test"),
         path("--output", "JSON"), needs_torch=True, sections=EVALUATION)  # fmt: skip
def vertexing(args: argparse.Namespace, settings: JobSettings) -> None:
    """Vertices found by a model's pair head on the test split, matched to the truth."""
    from jettag.evaluation.track_tasks import evaluate_vertexing

    result = evaluate_vertexing(
        args.model, args.checkpoint, args.test, settings.evaluation.pt_bins_gev
    )
    result.write(args.output)
    for name in result.classes:
        found = sum(result.counts[name]["n_inclusive_found"])
        with_truth = sum(result.counts[name]["n_jets_with_truth"])
        log.info(
            "vertexing %s, %s jets: pair efficiency %.3f, purity %.3f; inclusive vertex found"
            " in %d of %d jets with one", args.model, name,
            float(result.pair_efficiency(name).value), float(result.pair_purity(name).value),
            found, with_truth,
        )  # fmt: skip


@command("saliency", "saliency maps of a trained model", stages.saliency,
         path("--checkpoint"), path("--test"), path("--output"), needs_torch=True,
         sections=EVALUATION)  # fmt: skip
def saliency(args: argparse.Namespace, settings: JobSettings) -> None:
    """Saliency maps of a trained model on the test split."""
    from jettag.evaluation.saliency import saliency_maps

    section = settings.evaluation.saliency
    saliency_maps(args.checkpoint, args.test, discriminant(settings), section.n_tracks,
                  section.working_point).write(args.output)  # fmt: skip


@command("importance", "permutation importance of feature groups", stages.importance,
         path("--checkpoint"), path("--test"), path("--output"), needs_torch=True,
         sections=EVALUATION)  # fmt: skip
def importance(args: argparse.Namespace, settings: JobSettings) -> None:
    """Permutation importance of each feature group of a trained model on the test split."""
    from jettag.evaluation.importance import permutation_importance

    groups = {name: list(inputs) for name, inputs in settings.groups.items()}
    permutation_importance(args.checkpoint, args.test, discriminant(settings), groups,
                           settings.evaluation.pt_working_point,
                           seed=settings.seed).write(args.output)  # fmt: skip


@command("ablation", "rejection lost without each feature group", stages.ablation,
         path("--nominal", "predictions of the full model"), path("--output"),
         paths("variants", "GROUP=predictions.h5 of each retraining", type=str),
         sections=EVALUATION)  # fmt: skip
def ablation(args: argparse.Namespace, settings: JobSettings) -> None:
    """Rejection lost by retraining a model without each feature group."""
    from jettag.evaluation.ablation import ablation_summary

    result = ablation_summary(args.model, args.nominal, named_paths(args.variants),
                              settings.groups, discriminant(settings),
                              settings.evaluation.pt_working_point)  # fmt: skip
    result.write(args.output)
    for group, entry in result.groups.items():
        lost = {k.removesuffix("_rejection_loss"): v for k, v in entry.items()
                if k.endswith("_rejection_loss")}  # fmt: skip
        log.info("ablation %s without %s: rejection lost %s", args.model, group, lost)


@command("learning-curve", "loss vs training-set size", stages.learning_curve,
         path("--data-dir"), path("--output"),
         paths("checkpoints", "best.pt of each training size"), needs_torch=True)  # fmt: skip
def learning_curve(args: argparse.Namespace, settings: JobSettings) -> None:
    """Training and validation loss of a model trained on growing training sets."""
    from jettag.evaluation.learning_curve import learning_curve

    result = learning_curve(args.checkpoints, args.data_dir, args.model)
    result.write(args.output)
    for point in result.points:
        log.info("learning curve %s: %d jets, train loss %.4f, val loss %.4f", args.model,
                 point["train_jets"], point["train_loss"], point["val_loss"])  # fmt: skip
