"""`jettag <stage> ...`: one thin command per pipeline stage, explicit inputs and outputs.

Every Snakemake rule runs one of these; `snakemake -p` prints the exact line to rerun a
stage by hand. A command parses its arguments, loads and validates the config, takes from it
only what the stage reads (jettag.stages.stage_settings, the same mapping the rule's params
hold) and calls one library function with it; no physics lives here. This module imports
neither torch nor the stages' libraries at load time: each command imports what it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jettag import config as cfg
from jettag.errors import ConfigError, InputError, TrainingInterruptedError
from jettag.signals import on_sigterm, sigterm_deferred
from jettag.stages import settings_digest, stage_settings

if TYPE_CHECKING:  # plotting imports matplotlib: only the plot commands load it
    from jettag.evaluation.discriminant import Discriminant
    from jettag.plotting.style import FigureText

log = logging.getLogger("jettag")
Settings = dict[str, Any]


def cmd_generate(args: argparse.Namespace, settings: Settings) -> None:
    """Generate one shard of a sample with Pythia 8 + FastJet + the parametrised tracker."""
    from jettag.simulate.generate import generate_shard

    sample = cfg.section(cfg.GenerationConfig, settings["sample"])
    simulation = cfg.section(cfg.SimulationConfig, settings["simulation"])
    stats = generate_shard(args.sample, sample, simulation, settings["seed"], args.shard,
                           args.output)  # fmt: skip
    log.info("generate %s/%d: %s", args.sample, args.shard, stats)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> None:
    """Convert a sample's ROOT/HDF5 files into the canonical HDF5 file."""
    from jettag.io.ingest import entries_before, ingest_sample

    sample = cfg.section(cfg.ReadingConfig, settings["sample"])
    ingest = cfg.section(cfg.IngestConfig, settings["ingest"])
    first_entry = entries_before(sample, [Path(p) for p in settings.get("earlier_files", [])])
    stats = ingest_sample(sample, args.inputs, ingest, args.output, args.sample, first_entry)
    part = "" if args.part is None else f" part {args.part}"
    log.info("ingest %s%s: %s", args.sample, part, stats)


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> None:
    """Split, derive, normalise and weight a dataset."""
    from jettag.features.prepare import prepare_dataset

    prepare = cfg.section(cfg.PrepareConfig, settings["prepare"])
    prepare_dataset(
        args.input, prepare, settings["seed"], args.output_dir, settings["test_only_event_number"]
    )


def cmd_train(args: argparse.Namespace, settings: Settings) -> None:
    """Train one member of a model, or one variant of its training (config/jobs.py)."""
    from jettag.config.jobs import run_name
    from jettag.training.loop import train_model

    variant = cfg.parse_variant(args.variant)
    if variant.needs_pretrained != (args.pretrained is not None):
        raise ConfigError(
            f"--variant {variant}: --pretrained is "
            + ("required" if variant.needs_pretrained else "only for transfer/finetune|frozen")
        )
    model = cfg.section(cfg.ModelConfig, settings["model"])
    history = train_model(
        run_name(args.model, variant), model, args.data_dir, args.output_dir, settings["seed"],
        args.member, threads=args.threads, pretrained=args.pretrained,
        freeze_track_encoder=variant.freezes_track_encoder, snapshots=variant.saves_snapshots,
    )  # fmt: skip
    best = min(history, key=lambda row: row["val_loss"])
    log.info("train %s/%d (%s on %s): %d epochs, best val loss %.4f at epoch %d", args.model,
             args.member, variant, model.dataset, len(history), best["val_loss"],
             best["epoch"])  # fmt: skip


def cmd_export_onnx(args: argparse.Namespace, settings: Settings) -> None:
    """Export a trained member to ONNX, its input normalisation in the metadata."""
    from jettag.export import export_onnx

    metadata = export_onnx(args.checkpoint, args.output)
    log.info("exported %s to %s: track inputs %s, jet inputs %s", args.checkpoint, args.output,
             metadata["track_features"], metadata["jet_features"])  # fmt: skip


def cmd_fit_baseline(args: argparse.Namespace, settings: Settings) -> None:
    """Fit the track templates of an IP3D-like baseline on the training split."""
    import h5py

    from jettag.atomic import write_json
    from jettag.io.canonical import absent_fields
    from jettag.models import ip3d

    baseline = settings["baseline"]
    path = args.data_dir / "train.h5"
    with h5py.File(path, "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
        absent = absent_fields(f["jets"].attrs, path)
    grading = ip3d.choose_grading(baseline["track_grades"], tracks, absent, str(path))
    templates = ip3d.fit_templates(tracks, jets["flavour_label"], classes, baseline["sd0_bins"],
                                   baseline["sz0_bins"], grading)  # fmt: skip
    write_json(args.output, templates.to_dict())
    log.info("fit-baseline %s: templates of %d track grades (%s)", args.baseline,
             len(grading.grades), grading.name)  # fmt: skip


def cmd_predict(args: argparse.Namespace, settings: Settings) -> None:
    """Score the test split with a model's members or a baseline."""
    from jettag.evaluation.predict import predict

    predict(args.tagger, args.test, args.members, settings["kind"], args.output)


def _discriminant(evaluation: Settings) -> Discriminant:
    """The stage settings' evaluation.discriminant as a Discriminant."""
    from jettag.evaluation.discriminant import Discriminant

    return Discriminant.from_dict(evaluation["discriminant"])


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> None:
    """Metrics (AUC, working points, ROC) of one tagger's predictions."""
    from jettag.evaluation.evaluate import evaluate

    evaluation = settings["evaluation"]
    grid = cfg.section(cfg.RocGrid, evaluation["roc_b_efficiencies"])
    metrics = evaluate(args.predictions, _discriminant(evaluation),
                       evaluation["working_points"], grid, args.output)  # fmt: skip
    wp_label = "77" if "77" in metrics["working_points"] else next(iter(metrics["working_points"]))
    wp = metrics["working_points"][wp_label]

    def shown(name: str, digits: int) -> str:
        text = f"{wp[f'{name}_rejection']:.{digits}f}"
        return f"> {text} (lower limit)" if wp[f"{name}_rejection_is_lower_limit"] else text

    log.info("evaluate %s: AUC %s; rejection at the %s %% WP: %s", metrics["tagger"],
             {k: round(v, 4) for k, v in metrics["auc"].items()}, wp_label,
             {bkg: shown(bkg, 2) for bkg in metrics["discriminant"]["fractions"]})  # fmt: skip


def cmd_working_points(args: argparse.Namespace, settings: Settings) -> None:
    """Table of cuts, efficiencies and rejections at every working point, several taggers."""
    import numpy as np

    from jettag.evaluation.working_points import working_point_table

    evaluation = settings["evaluation"]
    grid = evaluation["roc_b_efficiencies"]
    working_point_table(
        args.predictions, _discriminant(evaluation), evaluation["working_points"], args.output_json,
        args.output_md, reference=settings["reference"],
        roc_efficiencies=np.linspace(grid["start"], grid["stop"], grid["points"]),
        replicas=evaluation["bootstrap_replicas"], seed=settings["seed"],
    )  # fmt: skip


def cmd_multiclass(args: argparse.Namespace, settings: Settings) -> None:
    """Confusion matrix and the class set's binary tasks of one tagger's predictions."""
    import numpy as np

    from jettag.evaluation.discriminant import Discriminant
    from jettag.evaluation.multiclass import multiclass_summary

    evaluation = settings["evaluation"]
    grid = evaluation["roc_b_efficiencies"]
    result = multiclass_summary(
        args.predictions, [Discriminant.from_dict(t) for t in settings["tasks"]],
        evaluation["multiclass_efficiency"],
        np.linspace(grid["start"], grid["stop"], grid["points"]), args.output,
    )  # fmt: skip
    log.info("multiclass %s: accuracy %.3f; AUC %s", result["tagger"], result["accuracy"],
             {t["name"]: round(min(t["auc"].values()), 4) for t in result["tasks"]})  # fmt: skip


def cmd_plot_multiclass(args: argparse.Namespace, settings: Settings) -> None:
    """Confusion matrix and binary-task ROCs of one tagger."""
    from jettag.plotting.multiclass import plot_confusion, plot_task_rocs

    label = _label(settings, args.result, args.tagger)
    text, formats = _figure_text(settings), settings["plots"]["formats"]
    plot_confusion(args.result, label, Path(f"{args.output_prefix}_confusion"), text, formats)
    plot_task_rocs(args.result, label, Path(f"{args.output_prefix}_tasks"), text, formats)


def cmd_fraction_scan(args: argparse.Namespace, settings: Settings) -> None:
    """Rejections of every tagger of a dataset as one background fraction is scanned."""
    from jettag.evaluation.fraction_scan import fraction_scan

    evaluation = settings["evaluation"]
    scan = evaluation["fraction_scan"]
    fraction_scan(args.predictions, _discriminant(evaluation), scan["background"],
                  scan["fractions"], scan["working_point"], args.output)  # fmt: skip


def cmd_plot_fraction_scan(args: argparse.Namespace, settings: Settings) -> None:
    """Draw the fraction scan of a dataset's taggers."""
    from jettag.plotting.multiclass import plot_fraction_scan

    taggers = list(json.loads(args.scan.read_text())["taggers"])
    plot_fraction_scan(args.scan, [settings["labels"][t] for t in taggers], args.output_stem,
                       _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_performance(args: argparse.Namespace, settings: Settings) -> None:
    """Efficiency and rejection vs jet pT at a working point, and D_b per flavour, of a tagger."""
    from jettag.evaluation.working_points import efficiency_vs_pt, score_histograms

    evaluation = settings["evaluation"]
    efficiency_vs_pt(args.predictions, _discriminant(evaluation), evaluation["pt_working_point"],
                     evaluation["pt_bins_gev"], args.output_pt)  # fmt: skip
    score_histograms(args.predictions, _discriminant(evaluation), evaluation["working_points"],
                     args.output_scores)  # fmt: skip


def cmd_learning_curve(args: argparse.Namespace, settings: Settings) -> None:
    """Training and validation loss of a model trained on growing training sets."""
    from jettag.evaluation.learning_curve import learning_curve

    result = learning_curve(args.checkpoints, args.data_dir, args.output, args.model)
    for point in result["points"]:
        log.info("learning curve %s: %d jets, train loss %.4f, val loss %.4f", args.model,
                 point["train_jets"], point["train_loss"], point["val_loss"])  # fmt: skip


def _named_paths(items: Sequence[str]) -> dict[str, Path]:
    """NAME=PATH arguments as a mapping."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"expected NAME=PATH, got '{item}'")
        out[name] = Path(path)
    return out


def cmd_ablation(args: argparse.Namespace, settings: Settings) -> None:
    """Rejection lost by retraining a model without each feature group."""
    from jettag.evaluation.ablation import ablation_summary

    evaluation = settings["evaluation"]
    result = ablation_summary(args.model, args.nominal, _named_paths(args.variants),
                              settings["groups"], _discriminant(evaluation),
                              evaluation["pt_working_point"], args.output)  # fmt: skip
    for group, entry in result["groups"].items():
        lost = {k.removesuffix("_rejection_loss"): v for k, v in entry.items()
                if k.endswith("_rejection_loss")}  # fmt: skip
        log.info("ablation %s without %s: rejection lost %s", args.model, group, lost)


def cmd_lr_finder(args: argparse.Namespace, settings: Settings) -> None:
    """Learning-rate range test of a model."""
    import torch

    from jettag.atomic import write_json
    from jettag.training.lr_finder import lr_range_test

    if args.threads:
        torch.set_num_threads(args.threads)
    finder = settings["lr_finder"]
    result = lr_range_test(args.model, cfg.model_from_dict(settings["model"]), args.data_dir,
                           settings["seed"], finder["min_lr"], finder["max_lr"], finder["steps"],
                           finder["stop_factor"])  # fmt: skip
    write_json(args.output, result)
    suggested = result["suggested"]
    log.info("lr finder %s: %d steps (%s); steepest descent at %.3g, minimum at %.3g;"
             " configured %.3g", args.model, result["steps_run"], result["stopped"],
             suggested["steepest"], suggested["minimum"],
             result["configured_learning_rate"])  # fmt: skip


def cmd_study_summary(args: argparse.Namespace, settings: Settings) -> None:
    """Losses, rejections, sizes and speed of every point of a model-choice study."""
    from jettag.atomic import write_text
    from jettag.evaluation.study import markdown, study_summary

    study = settings["study"]
    expected = [(p["name"], k) for p in study["points"] for k in range(study["seeds"])]
    files = (args.histories, args.predictions, args.checkpoints)
    if any(len(f) != len(expected) for f in files):
        raise ConfigError(
            f"study-summary {args.study}: {len(expected)} runs (points x seeds) expected, got"
            f" {[len(f) for f in files]} histories, predictions, checkpoints"
        )
    runs: dict[str, list] = {p["name"]: [] for p in study["points"]}
    for (point, seed), *paths in zip(expected, *files, strict=True):
        for path in paths:  # point-major, seed-minor, as the rule lists them
            if path.parent.name != str(seed) or path.parent.parent.name != point:
                raise ConfigError(f"study-summary {args.study}: {path} is not run {point}/{seed}")
        runs[point].append(tuple(paths))
    evaluation = settings["evaluation"]
    result = study_summary(args.study, study, settings["sections"], runs, args.train_file,
                           _discriminant(evaluation), evaluation["pt_working_point"],
                           args.output)  # fmt: skip
    write_text(args.output_md, markdown(result))
    for point in result["points"]:
        log.info("study %s, %s: val loss %.4f, light rejection %s, %d parameters", args.study,
                 point["name"], point["val_loss"], point["light_rejection"],
                 point["n_parameters"])  # fmt: skip


def cmd_ensemble_comparison(args: argparse.Namespace, settings: Settings) -> None:
    """Training cost and rejections of a deep and a snapshot ensemble of one model."""
    from jettag.atomic import write_text
    from jettag.evaluation.ensembles import compare_ensembles, markdown

    section = settings["snapshot_ensemble"]
    result = compare_ensembles(
        args.ensemble, section["model"],
        {"deep": args.deep_metrics, "snapshot": args.snapshot_metrics},
        {"deep": args.deep_histories, "snapshot": args.snapshot_histories},
        {"deep": args.deep_benchmarks, "snapshot": args.snapshot_benchmarks},
        settings["evaluation"]["pt_working_point"], args.output,
    )  # fmt: skip
    write_text(args.output_md, markdown(result))
    for kind, entry in result["ensembles"].items():
        light = entry["light"]
        log.info("%s ensemble of %s: %d members, %d epochs, light rejection %s (members %s +- %s)",
                 kind, section["model"], entry["n_members"], entry["cost"]["epochs"],
                 light["ensemble"], light["mean"], light["std"])  # fmt: skip


def cmd_saliency(args: argparse.Namespace, settings: Settings) -> None:
    """Saliency maps of a trained model on the test split."""
    from jettag.evaluation.saliency import saliency_maps

    evaluation = settings["evaluation"]
    saliency = evaluation["saliency"]
    saliency_maps(args.checkpoint, args.test, _discriminant(evaluation), args.output,
                  saliency["n_tracks"], saliency["working_point"])  # fmt: skip


def cmd_importance(args: argparse.Namespace, settings: Settings) -> None:
    """Permutation importance of each feature group of a trained model on the test split."""
    from jettag.evaluation.importance import permutation_importance

    evaluation = settings["evaluation"]
    groups = {name: list(inputs) for name, inputs in settings["groups"].items()}
    permutation_importance(args.checkpoint, args.test, _discriminant(evaluation), args.output,
                           groups, evaluation["pt_working_point"],
                           seed=settings["seed"])  # fmt: skip


def cmd_sample_histograms(args: argparse.Namespace, settings: Settings) -> None:
    """Per-flavour validation histograms of an ingested sample."""
    from jettag.evaluation.sample_histograms import sample_histograms

    result = sample_histograms(args.input, args.output, settings["classes"],
                               settings["label_variable"])  # fmt: skip
    log.info("sample %s: jets %s, fractions %s", args.sample, result["n_jets"],
             {k: round(v, 3) for k, v in result["fractions"].items()})  # fmt: skip


def cmd_input_histograms(args: argparse.Namespace, settings: Settings) -> None:
    """Per-flavour histograms of every model input: raw, transformed, normalised, reweighted."""
    from jettag.evaluation.input_histograms import input_histograms

    input_histograms(args.data_dir, args.output, args.split)


def cmd_search_summary(args: argparse.Namespace, settings: Settings) -> None:
    """Rank random-search trials by validation loss and write the best model section."""
    from jettag.evaluation.search import search_summary

    result = search_summary(args.model, settings["seed"], settings["search"], settings["model"],
                            _named_paths(args.histories), args.output_json, args.output_md,
                            args.output_best)  # fmt: skip
    best = result["trials"][0]
    log.info("search %s: best trial %s, val loss %.4f (as configured: %s)", result["model"],
             best["trial"], best["val_loss"], result["nominal_val_loss"])  # fmt: skip


def cmd_transfer_summary(args: argparse.Namespace, settings: Settings) -> None:
    """AUC and rejections of every transfer-learning run on the target test split."""
    from jettag.evaluation.transfer import transfer_summary

    evaluation = settings["evaluation"]
    result = transfer_summary(
        args.model, _named_paths(args.runs), args.pretrained, args.data_dir,
        _discriminant(evaluation), evaluation["pt_working_point"], args.output_json,
        args.output_md,
    )  # fmt: skip
    for strategy, points in result["points"].items():
        log.info("transfer %s: light rejection %s", strategy,
                 ", ".join(f"{p['train_jets']}: {p['light_rejection_mean']:.1f}"
                           for p in points))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Plots: drawn from numbers files; every text on them comes from the plot stage's settings.


def _figure_text(settings: Settings) -> FigureText:
    """The experiment label, sqrt(s) and sample text of a plot stage's settings."""
    from jettag.plotting.style import FigureText

    label, sample = settings["plots"]["experiment_label"], settings["sample"]
    return FigureText(label["experiment"], label["status"], sample["sqrt_s_gev"] / 1000.0,
                      sample["label"])  # fmt: skip


def _tagger_of(path: Path, key: str = "tagger") -> str:
    """The tagger (or model) named in a results JSON file."""
    return json.loads(Path(path).read_text())[key]


def _labels(settings: Settings, taggers: Sequence[str], files: Sequence[Path]) -> list[str]:
    """Legend texts of the taggers of some results files, each checked against the settings."""
    labels = settings["labels"]
    unknown = [f"{p} ({t})" for t, p in zip(taggers, files, strict=True) if t not in labels]
    if unknown:
        raise ConfigError(f"results of taggers this plot does not draw: {unknown}; it draws"
                          f" {sorted(labels)}")  # fmt: skip
    return [labels[t] for t in taggers]


def _label(settings: Settings, path: Path, name: str, key: str = "tagger") -> str:
    """The legend text of a tagger, whose results a file must hold."""
    found = _tagger_of(path, key)
    if found != name:
        raise ConfigError(f"{path}: results of '{found}', not of '{name}'")
    return settings["labels"][name]


def cmd_plot_roc(args: argparse.Namespace, settings: Settings) -> None:
    """Draw the ROC figure of a dataset from metrics files."""
    from jettag.plotting.roc import plot_roc

    taggers = [_tagger_of(p) for p in args.metrics]
    paired = json.loads(Path(args.comparison).read_text()).get("paired") or {}
    if paired.get("reference") != settings["reference"]:
        raise ConfigError(f"{args.comparison}: ratios to {paired.get('reference')!r}, the"
                          f" config's reference is '{settings['reference']}'")  # fmt: skip
    plot_roc(args.metrics, _labels(settings, taggers, args.metrics), args.comparison,
             args.output_stem, _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_plot_pt(args: argparse.Namespace, settings: Settings) -> None:
    """b efficiency, c and light rejection vs jet pT of several taggers."""
    from jettag.plotting.performance import plot_efficiency_vs_pt

    taggers = [_tagger_of(p) for p in args.pt_files]
    plot_efficiency_vs_pt(args.pt_files, _labels(settings, taggers, args.pt_files),
                          args.output_prefix, _figure_text(settings),
                          settings["plots"]["formats"])  # fmt: skip


def cmd_plot_scores(args: argparse.Namespace, settings: Settings) -> None:
    """D_b distribution per flavour of one tagger, with the working-point cuts."""
    from jettag.plotting.performance import plot_score_histograms

    label = _label(settings, args.scores, args.tagger)
    plot_score_histograms(args.scores, label, args.output_stem, _figure_text(settings),
                          settings["plots"]["formats"])  # fmt: skip


def cmd_plot_loss(args: argparse.Namespace, settings: Settings) -> None:
    """Draw loss curves of a model's members, each with its loss-curve diagnosis."""
    from jettag.atomic import write_json
    from jettag.io.history import read_history
    from jettag.plotting.curves import plot_loss
    from jettag.training.diagnosis import diagnose, summary

    diagnoses = [diagnose(read_history(path)) for path in args.histories]
    if args.diagnosis is not None:
        members = [{"history": str(p), **d} for p, d in zip(args.histories, diagnoses, strict=True)]
        write_json(args.diagnosis, {"model": args.model, "members": members})
    plot_loss(args.histories, settings["labels"][args.model], args.output_stem,
              _figure_text(settings), settings["plots"]["formats"],
              [summary(d) for d in diagnoses])  # fmt: skip


def cmd_plot_learning_curve(args: argparse.Namespace, settings: Settings) -> None:
    """Draw loss vs training-set size."""
    from jettag.plotting.curves import plot_learning_curve

    label = _label(settings, args.curve, args.model, key="model")
    plot_learning_curve(args.curve, label, args.output_stem, _figure_text(settings),
                        settings["plots"]["formats"])  # fmt: skip


def cmd_plot_lr_finder(args: argparse.Namespace, settings: Settings) -> None:
    """Draw a learning-rate range test."""
    from jettag.plotting.lr_finder import plot_lr_finder

    plot_lr_finder(args.result, settings["labels"][args.model], args.output_stem,
                   _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_plot_study(args: argparse.Namespace, settings: Settings) -> None:
    """Draw a model-choice study."""
    from jettag.plotting.study import plot_study

    plot_study(args.summary, settings["labels"][settings["model"]], settings["title"],
               args.output_stem, _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_plot_search(args: argparse.Namespace, settings: Settings) -> None:
    """Draw validation loss vs each searched hyper-parameter."""
    from jettag.plotting.curves import plot_search

    label = _label(settings, args.search, args.model, key="model")
    plot_search(args.search, label, args.output_stem, _figure_text(settings),
                settings["plots"]["formats"])  # fmt: skip


def cmd_plot_saliency(args: argparse.Namespace, settings: Settings) -> None:
    """Draw the saliency heat maps of a model."""
    from jettag.plotting.saliency import plot_saliency

    label = _label(settings, args.saliency, args.model)
    plot_saliency(args.saliency, label, args.output_stem, _figure_text(settings),
                  settings["plots"]["formats"])  # fmt: skip


def cmd_plot_importance(args: argparse.Namespace, settings: Settings) -> None:
    """Draw rejection lost per feature group (permutation importance or ablation)."""
    from jettag.plotting.saliency import plot_permutation_importance

    label = _label(settings, args.importance, args.model)
    plot_permutation_importance(args.importance, label, args.output_stem,
                                _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_plot_transfer(args: argparse.Namespace, settings: Settings) -> None:
    """Draw light rejection and AUC vs number of target training jets per strategy."""
    from jettag.plotting.transfer import plot_transfer

    label = _label(settings, args.summary, args.model, key="model")
    source = settings["source"]
    name = source["name"]
    if "process" in source:  # a generated sample: its process in symbols
        name = {"ttbar": "$t\\bar{t}$", "zprime": "$Z'$"}[source["process"]]
    plot_transfer(args.summary, f"{label} pretrained on {name}", args.output_stem,
                  _figure_text(settings), settings["plots"]["formats"])  # fmt: skip


def cmd_plot_sample(args: argparse.Namespace, settings: Settings) -> None:
    """Draw the validation plots of a sample."""
    from jettag.plotting.sample import plot_sample

    plot_sample(args.histograms, args.output_prefix, _figure_text(settings),
                settings["plots"]["formats"])  # fmt: skip


def cmd_plot_inputs(args: argparse.Namespace, settings: Settings) -> None:
    """Draw the input histograms of a dataset and its pT reweighting."""
    from jettag.plotting.inputs import plot_inputs

    plot_inputs(args.histograms, args.output_prefix, _figure_text(settings),
                settings["plots"]["formats"])  # fmt: skip


def cmd_check_config(args: argparse.Namespace, config: dict) -> None:
    """Validate a config against the schema and the input files; print it with every default.

    For samples read from files, the fields each file provides are listed after the config
    as YAML comments: what is read (with units), derived (and from what) and absent.
    """
    import yaml

    from jettag.io.inspect import check_input_files

    layouts = check_input_files(config)
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False))
    for name, files in layouts.items():
        sample = cfg.section(cfg.ReadingConfig, cfg.reading_settings(config, name))
        for path, layout in files.items():
            sys.stdout.write(f"# sample {name}, {path}:\n")
            sys.stdout.writelines(f"#   {line}\n" for line in layout.describe(sample))


def _parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stage.

    A stage's `wildcards` are the arguments that name its job (a sample, a model, ...): they
    select the settings it is given (jettag.stages), as the rule's wildcards do.
    """
    parser = argparse.ArgumentParser(prog="jettag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True)

    def stage(
        name: str, func: Callable, help_text: str, wildcards: tuple[str, ...] = ()
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, required=True, help="analysis YAML config")
        p.set_defaults(func=func, wildcards=wildcards)
        return p

    p = stage("check-config", cmd_check_config, "validate a config and print it with defaults")
    p.set_defaults(wildcards=None)  # reads the whole config
    p = stage("generate", cmd_generate, "generate one shard of a sample", ("sample", "shard"))
    p.add_argument("--sample", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--output", type=Path, required=True, help="ROOT file to write")
    p = stage("ingest", cmd_ingest, "ROOT/HDF5 inputs -> canonical HDF5", ("sample", "part"))
    p.add_argument("--sample", required=True)
    p.add_argument("--part", type=int, default=None,
                   help="the sample's part (input file or generated shard) a sharded ingest"
                        " writes; without it the inputs are all of the sample's files")  # fmt: skip
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("inputs", type=Path, nargs="+", help="ROOT or HDF5 files")
    p = stage("prepare", cmd_prepare, "canonical HDF5 -> train/val/test, norm.yaml, weights.yaml",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--input",
        type=Path,
        nargs="+",
        required=True,
        help="the ingested file, or the parts of a sharded ingest in order",
    )
    p.add_argument("--output-dir", type=Path, required=True)
    p = stage("train", cmd_train, "train one member of a model (or a variant of its training)",
              ("model", "variant", "member"))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--variant", default="member",
                   help="member (default), search/nominal, search/<trial>,"
                        " transfer/<scratch|finetune|frozen>/<jets>, ablation/<group>,"
                        " learning_curve/<jets>, study/<study>/<point>, snapshot/<name>"
                        " (config/jobs.py)")  # fmt: skip
    p.add_argument("--member", type=int, default=0,
                   help="ensemble member, K-fold fold or transfer seed")  # fmt: skip
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--pretrained", type=Path, default=None,
                   help="best.pt of the pretrained model (transfer/finetune, /frozen)")  # fmt: skip
    p = stage("export-onnx", cmd_export_onnx, "export a trained member to ONNX")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of the member")
    p.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    p = stage("fit-baseline", cmd_fit_baseline, "fit an IP3D-like baseline's templates",
              ("baseline",))  # fmt: skip
    p.add_argument("--baseline", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("predict", cmd_predict, "score the test split with a tagger", ("tagger",))
    p.add_argument("--tagger", required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("members", type=Path, nargs="+", help="best.pt of each member, or templates")
    p = stage("evaluate", cmd_evaluate, "metrics of one tagger")
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("sample-histograms", cmd_sample_histograms, "validation histograms of a sample",
              ("sample",))  # fmt: skip
    p.add_argument("--sample", required=True)
    p.add_argument(
        "--input",
        type=Path,
        nargs="+",
        required=True,
        help="ingested (canonical) HDF5, or the parts of a sharded ingest",
    )
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p = stage("plot-sample", cmd_plot_sample, "validation plots of a sample", ("sample",))
    p.add_argument("--sample", required=True)
    p.add_argument("--histograms", type=Path, required=True)
    p.add_argument("--output-prefix", type=Path, required=True)
    p = stage("working-points", cmd_working_points, "working-point table of several taggers",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True, help="the dataset the taggers are tested on")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("predictions", type=Path, nargs="+")
    p = stage("performance", cmd_performance, "efficiency vs pT and D_b histograms of a tagger")
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--output-pt", type=Path, required=True, help="JSON: efficiency vs pT")
    p.add_argument("--output-scores", type=Path, required=True, help="JSON: D_b histograms")
    p = stage("fraction-scan", cmd_fraction_scan, "rejections vs a background's fraction",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True, help="the dataset the taggers are tested on")
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p.add_argument("predictions", type=Path, nargs="+")
    p = stage("plot-fraction-scan", cmd_plot_fraction_scan, "draw a fraction scan",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True)
    p.add_argument("--scan", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("multiclass", cmd_multiclass, "confusion matrix and binary tasks of a tagger")
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p = stage("plot-multiclass", cmd_plot_multiclass, "confusion matrix and task ROCs",
              ("tagger",))  # fmt: skip
    p.add_argument("--tagger", required=True)
    p.add_argument("--result", type=Path, required=True, help="results/multiclass/<tagger>.json")
    p.add_argument("--output-prefix", type=Path, required=True)
    p = stage("plot-pt", cmd_plot_pt, "efficiency and rejection vs jet pT", ("dataset",))
    p.add_argument("--dataset", required=True)
    p.add_argument("--output-prefix", type=Path, required=True)
    p.add_argument("pt_files", type=Path, nargs="+")
    p = stage("plot-scores", cmd_plot_scores, "D_b distributions per flavour", ("tagger",))
    p.add_argument("--tagger", required=True)
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("learning-curve", cmd_learning_curve, "loss vs training-set size", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("checkpoints", type=Path, nargs="+", help="best.pt of each training size")
    p = stage("plot-learning-curve", cmd_plot_learning_curve, "draw loss vs training-set size",
              ("model",))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--curve", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("ablation", cmd_ablation, "rejection lost without each feature group", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--nominal", type=Path, required=True, help="predictions of the full model")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("variants", nargs="+", help="GROUP=predictions.h5 of each retraining")
    p = stage("lr-finder", cmd_lr_finder, "learning-rate range test of a model", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p.add_argument("--threads", type=int, default=None)
    p = stage("plot-lr-finder", cmd_plot_lr_finder, "draw a learning-rate range test",
              ("model",))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--result", type=Path, required=True, help="results/lr_finder/<model>.json")
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("study-summary", cmd_study_summary, "summarise a model-choice study",
              ("study",))  # fmt: skip
    p.add_argument("--study", required=True)
    p.add_argument("--train-file", type=Path, required=True, help="the training split (size)")
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p.add_argument("--output-md", type=Path, required=True, help="markdown table")
    p.add_argument("--histories", type=Path, nargs="+", required=True,
                   help="history.csv of each run, point by point, seeds in order")  # fmt: skip
    p.add_argument("--predictions", type=Path, nargs="+", required=True,
                   help="validation-split predictions of each run, same order")  # fmt: skip
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True,
                   help="best.pt of each run, same order")  # fmt: skip
    p = stage("ensemble-comparison", cmd_ensemble_comparison,
              "compare a deep and a snapshot ensemble (snapshot_ensembles.<name>)",
              ("ensemble",))  # fmt: skip
    p.add_argument("--ensemble", required=True, help="the snapshot_ensembles entry")
    p.add_argument("--deep-metrics", type=Path, required=True, help="metrics JSON of the model")
    p.add_argument("--snapshot-metrics", type=Path, required=True,
                   help="metrics JSON of the snapshot ensemble")  # fmt: skip
    p.add_argument("--deep-histories", type=Path, nargs="+", required=True,
                   help="history.csv of each deep-ensemble member")  # fmt: skip
    p.add_argument("--snapshot-histories", type=Path, nargs="+", required=True,
                   help="history.csv of the snapshot training")  # fmt: skip
    p.add_argument("--deep-benchmarks", type=Path, nargs="*", default=[],
                   help="Snakemake benchmark TSVs of the members' trainings")  # fmt: skip
    p.add_argument("--snapshot-benchmarks", type=Path, nargs="*", default=[],
                   help="Snakemake benchmark TSV of the snapshot training")  # fmt: skip
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p.add_argument("--output-md", type=Path, required=True, help="markdown tables")
    p = stage("plot-study", cmd_plot_study, "draw a model-choice study", ("study",))
    p.add_argument("--study", required=True)
    p.add_argument("--summary", type=Path, required=True, help="results/studies/<study>.json")
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("saliency", cmd_saliency, "saliency maps of a trained model")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("importance", cmd_importance, "permutation importance of feature groups",
              ("model",))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("plot-saliency", cmd_plot_saliency, "draw saliency heat maps", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--saliency", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-importance", cmd_plot_importance, "draw rejection lost per feature group",
              ("model",))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--importance", type=Path, required=True, help="importance or ablation JSON")
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("input-histograms", cmd_input_histograms, "histograms of every model input",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", type=Path, required=True, help="prepared dataset directory")
    p.add_argument("--split", choices=["train", "val", "test"], default="train")
    p.add_argument("--output", type=Path, required=True)
    p = stage("plot-inputs", cmd_plot_inputs, "draw input distributions and the reweighting",
              ("dataset",))  # fmt: skip
    p.add_argument("--dataset", required=True)
    p.add_argument("--histograms", type=Path, required=True)
    p.add_argument("--output-prefix", type=Path, required=True)
    p = stage("search-summary", cmd_search_summary, "rank random-search trials", ("model",))
    p.add_argument("--model", required=True, help="the searched model (search.model)")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("--output-best", type=Path, required=True, help="YAML: the best model section")
    p.add_argument("histories", nargs="+", help="TRIAL=history.csv of each trial")
    p = stage("transfer-summary", cmd_transfer_summary,
              "evaluate transfer-learning runs on the target test split", ("model",))  # fmt: skip
    p.add_argument("--model", required=True, help="the transferred model (transfer.model)")
    p.add_argument("--data-dir", type=Path, required=True, help="prepared target dataset")
    p.add_argument("--pretrained", type=Path, required=True, help="best.pt of the source model")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("runs", nargs="+", help="STRATEGY/JETS/SEED=best.pt of each run")
    p = stage("plot-transfer", cmd_plot_transfer, "draw the transfer-learning scan", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-search", cmd_plot_search, "validation loss vs each hyper-parameter",
              ("model",))  # fmt: skip
    p.add_argument("--model", required=True)
    p.add_argument("--search", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-roc", cmd_plot_roc, "ROC curves with ratio panels", ("dataset",))
    p.add_argument("--dataset", required=True)
    p.add_argument("--comparison", type=Path, required=True,
                   help="the dataset's working-points JSON (paired ratios)")  # fmt: skip
    p.add_argument("--output-stem", type=Path, required=True, help="path without extension")
    p.add_argument("metrics", type=Path, nargs="+")
    p = stage("plot-loss", cmd_plot_loss, "loss curves of a model", ("model",))
    p.add_argument("--model", required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p.add_argument("--diagnosis", type=Path, default=None,
                   help="write each member's loss-curve diagnosis here (JSON)")  # fmt: skip
    p.add_argument("histories", type=Path, nargs="+")
    return parser


class TerminatedError(BaseException):
    """SIGTERM arrived: unwind (a BaseException, so no `except Exception` swallows it)."""


_SIGTERM_SEEN = threading.Event()


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM handler: raise once, so that temporary outputs are removed on the way out."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup
    _SIGTERM_SEEN.set()
    raise TerminatedError(f"signal {signum}")


# stages that run a network: torch is imported up front, with SIGTERM held back (see _run)
TORCH_STAGES = frozenset({"train", "predict", "export-onnx", "saliency", "importance",
                          "learning-curve", "lr-finder", "study-summary"})  # fmt: skip


def _run(args: argparse.Namespace) -> None:
    """Load the config, take the stage's settings from it and run the stage."""
    if args.stage in TORCH_STAGES:
        # a SIGTERM during torch's native initialisation would abort, not unwind
        with sigterm_deferred(), contextlib.suppress(ImportError):
            import torch  # noqa: F401
    config = cfg.load_config(args.config)
    if args.wildcards is None:
        args.func(args, config)
        return
    settings = stage_settings(args.stage, config, **{w: getattr(args, w) for w in args.wildcards})
    # the rule's params hold the same settings: the digest ties a log to them
    log.info("%s settings sha256:%s", args.stage, settings_digest(settings))
    args.func(args, settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jettag` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    start = time.perf_counter()
    _SIGTERM_SEEN.clear()
    try:
        # without a handler SIGTERM ends Python at once and leaves the temporaries of atomic
        # writes behind; raising unwinds and removes them (training installs its own flag)
        with on_sigterm(_raise_terminated):
            try:
                _run(args)
            except (ConfigError, InputError) as err:
                print(f"jettag {args.stage}: error: {err}", file=sys.stderr)
                return 2
            except TrainingInterruptedError as err:
                print(f"jettag {args.stage}: interrupted: {err}", file=sys.stderr)
                return 128 + signal.SIGTERM
    except BaseException as err:
        # extension code may turn the handler's exception into its own: pybind11 raises
        # "ImportError: initialization failed" when SIGTERM lands while pythia8mc is imported
        if not (isinstance(err, TerminatedError) or _SIGTERM_SEEN.is_set()):
            raise
        print(f"jettag {args.stage}: terminated by SIGTERM; no partial output is left,"
              " rerun the same command", file=sys.stderr)  # fmt: skip
        return 128 + signal.SIGTERM
    log.info("%s finished in %.1f s", args.stage, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
