"""Summaries of the studies that help choose a model: model-choice studies, deep vs snapshot
ensembles, random hyper-parameter search and transfer learning."""

from __future__ import annotations

import argparse
import logging

from jettag import stages
from jettag.atomic import write_text, write_yaml
from jettag.commands.evaluation import EVALUATION, discriminant, named_paths
from jettag.commands.registry import JobSettings, command, path, paths

log = logging.getLogger("jettag")


@command(
    "study-summary", "summarise a model-choice study", stages.study_summary,
    path("--train-file", "the training split (size)"), path("--output", "JSON"),
    path("--output-md", "markdown table"),
    paths("--histories", "history.csv of each run, point by point, seeds in order"),
    paths("--predictions", "validation-split predictions of each run, same order"),
    paths("--checkpoints", "best.pt of each run, same order"),
    needs_torch=True, sections=EVALUATION,
)  # fmt: skip
def study_summary(args: argparse.Namespace, settings: JobSettings) -> None:
    """Losses, rejections, sizes and speed of every point of a model-choice study."""
    from jettag.evaluation.study import markdown, runs_by_point, study_summary

    study = settings.study
    runs = runs_by_point(args.study, study, args.histories, args.predictions, args.checkpoints)
    result = study_summary(args.study, study, settings.sections, runs, args.train_file,
                           discriminant(settings),
                           settings.evaluation.pt_working_point)  # fmt: skip
    result.write(args.output)
    write_text(args.output_md, markdown(result.to_dict()))
    for point in result.points:
        log.info("study %s, %s: val loss %.4f, light rejection %s, %d parameters", args.study,
                 point["name"], point["val_loss"], point["light_rejection"],
                 point["n_parameters"])  # fmt: skip


@command(
    "ensemble-comparison", "compare a deep and a snapshot ensemble (snapshot_ensembles.<name>)",
    stages.ensemble_comparison,
    path("--deep-metrics", "metrics JSON of the model"),
    path("--snapshot-metrics", "metrics JSON of the snapshot ensemble"),
    paths("--deep-histories", "history.csv of each deep-ensemble member"),
    paths("--snapshot-histories", "history.csv of the snapshot training"),
    paths("--deep-benchmarks", "Snakemake benchmark TSVs of the members' trainings",
          nargs="*", default=[]),
    paths("--snapshot-benchmarks", "Snakemake benchmark TSV of the snapshot training",
          nargs="*", default=[]),
    path("--output", "JSON"), path("--output-md", "markdown tables"),
    wildcard_help={"ensemble": "the snapshot_ensembles entry"}, sections=EVALUATION,
)  # fmt: skip
def ensemble_comparison(args: argparse.Namespace, settings: JobSettings) -> None:
    """Training cost and rejections of a deep and a snapshot ensemble of one model."""
    from jettag.evaluation.ensembles import compare_ensembles

    section = settings.snapshot_ensemble
    result = compare_ensembles(
        args.ensemble, section["model"],
        {"deep": args.deep_metrics, "snapshot": args.snapshot_metrics},
        {"deep": args.deep_histories, "snapshot": args.snapshot_histories},
        {"deep": args.deep_benchmarks, "snapshot": args.snapshot_benchmarks},
        settings.evaluation.pt_working_point,
    )  # fmt: skip
    result.write(args.output)
    write_text(args.output_md, result.markdown())
    for kind, entry in result.ensembles.items():
        light = entry["light"]
        log.info("%s ensemble of %s: %d members, %d epochs, light rejection %s (members %s +- %s)",
                 kind, section["model"], entry["n_members"], entry["cost"]["epochs"],
                 light["ensemble"], light["mean"], light["std"])  # fmt: skip


@command(
    "search-summary", "rank random-search trials", stages.search_summary,
    path("--output-json"), path("--output-md"),
    path("--output-best", "YAML: the best model section"),
    paths("histories", "TRIAL=history.csv of each trial", type=str),
    wildcard_help={"model": "the searched model (search.model)"},
)  # fmt: skip
def search_summary(args: argparse.Namespace, settings: JobSettings) -> None:
    """Rank random-search trials by validation loss and write the best model section."""
    from jettag.evaluation.search import search_summary

    result = search_summary(args.model, settings.seed, settings.search, settings.model,
                            named_paths(args.histories))  # fmt: skip
    result.write(args.output_json)
    write_text(args.output_md, result.markdown())
    write_yaml(args.output_best, result.best_model(settings.model))
    best = result.trials[0]
    log.info("search %s: best trial %s, val loss %.4f (as configured: %s)", result.model,
             best["trial"], best["val_loss"], result.nominal_val_loss)  # fmt: skip


@command(
    "transfer-summary", "evaluate transfer-learning runs on the target test split",
    stages.transfer_summary,
    path("--data-dir", "prepared target dataset"),
    path("--pretrained", "best.pt of the source model"),
    path("--output-json"), path("--output-md"),
    paths("runs", "STRATEGY/JETS/SEED=best.pt of each run", type=str),
    wildcard_help={"model": "the transferred model (transfer.model)"}, needs_torch=True,
    sections=EVALUATION,
)  # fmt: skip
def transfer_summary(args: argparse.Namespace, settings: JobSettings) -> None:
    """AUC and rejections of every transfer-learning run on the target test split."""
    from jettag.evaluation.transfer import markdown as transfer_markdown
    from jettag.evaluation.transfer import transfer_summary

    result = transfer_summary(
        args.model, named_paths(args.runs), args.pretrained, args.data_dir,
        discriminant(settings), settings.evaluation.pt_working_point,
    )  # fmt: skip
    result.write(args.output_json)
    write_text(args.output_md, transfer_markdown(result.to_dict()))
    for strategy, points in result.points.items():
        log.info("transfer %s: light rejection %s", strategy,
                 ", ".join(f"{p['train_jets']}: {p['light_rejection_mean']:.1f}"
                           for p in points))  # fmt: skip
