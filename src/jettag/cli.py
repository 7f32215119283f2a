"""`jettag <stage> ...`: one thin command per pipeline stage, explicit inputs and outputs.

Every Snakemake rule runs one of these; `snakemake -p` prints the exact line to rerun a
stage by hand. Commands parse arguments, load and validate the config, and call one library
function; no physics lives here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jettag import config as cfg
from jettag.signals import on_sigterm

log = logging.getLogger("jettag")


def _sqrt_s_tev(config: dict, dataset: str) -> float:
    """Centre-of-mass energy of a sample in TeV, for plot labels."""
    return cfg.sample_config(config, dataset).sqrt_s_gev / 1000.0


def cmd_generate(args: argparse.Namespace, config: dict) -> None:
    """Generate one shard of a sample with Pythia 8 + FastJet + the parametrised tracker."""
    from jettag.simulate.generate import generate_shard

    sample = cfg.sample_config(config, args.sample)
    if sample.source != "generate":
        raise cfg.ConfigError(f"sample '{args.sample}' has source '{sample.source}', not generate")
    if not 0 <= args.shard < sample.n_shards:
        raise cfg.ConfigError(f"shard {args.shard} outside 0..{sample.n_shards - 1}")
    simulation = cfg.section(cfg.SimulationConfig, config["simulation"])
    stats = generate_shard(args.sample, sample, simulation, config["seed"], args.shard, args.output)
    log.info("generate %s/%d: %s", args.sample, args.shard, stats)


def cmd_ingest(args: argparse.Namespace, config: dict) -> None:
    """Convert a sample's ROOT/HDF5 files into the canonical HDF5 file."""
    from jettag.io.ingest import ingest_sample

    sample = cfg.sample_config(config, args.sample)
    ingest = cfg.section(cfg.IngestConfig, config["ingest"])
    stats = ingest_sample(sample, args.inputs, ingest, args.output, args.sample)
    log.info("ingest %s: %s", args.sample, stats)


def cmd_prepare(args: argparse.Namespace, config: dict) -> None:
    """Split, derive, normalise and weight a dataset."""
    from jettag.features.prepare import prepare_dataset

    cfg.sample_config(config, args.dataset)
    prepare = cfg.section(cfg.PrepareConfig, config["prepare"])
    prepare_dataset(args.input, prepare, config["seed"], args.output_dir)


def cmd_train(args: argparse.Namespace, config: dict) -> None:
    """Train one member of a model."""
    from jettag.training.loop import train_model

    model = cfg.model_config(config, args.model)
    if args.transfer is not None:
        model = _transfer_job(config, args)
    elif not 0 <= args.member < model.members:
        raise cfg.ConfigError(f"member {args.member} outside 0..{model.members - 1}")
    else:
        model = _model_variant(config, args.model, args.without_group, args.max_train_jets)
    if args.search_trial is not None:
        model = _search_trial(config, args.model, args.search_trial)
    history = train_model(
        args.model if args.transfer is None else f"{args.model}_transfer", model, args.data_dir,
        args.output_dir, config["seed"], args.member, threads=args.threads,
        pretrained=args.pretrained, freeze_track_encoder=args.transfer == "frozen",
    )  # fmt: skip
    best = min(history, key=lambda row: row["val_loss"])
    run = f"{args.model}/{args.member}"
    if args.transfer is not None:
        run = f"{args.model} onto {model.dataset} ({args.transfer}, {args.train_jets} jets, seed"
        run += f" {args.member})"
    log.info("train %s: %d epochs, best val loss %.4f at epoch %d", run, len(history),
             best["val_loss"], best["epoch"])  # fmt: skip


def _model_variant(
    config: dict, name: str, without_group: str | None, max_train_jets: int | None
) -> cfg.ModelConfig:
    """A model's config, less a feature group (ablation) or on fewer training jets."""
    model = cfg.model_config(config, name)
    if without_group is not None:
        groups = cfg.feature_groups(config, name)
        if without_group not in groups:
            raise cfg.ConfigError(f"--without-group '{without_group}' not in {sorted(groups)}")
        inputs = model.track_inputs or tuple(t["name"] for t in config["prepare"]["track_inputs"])
        kept = tuple(n for n in inputs if n not in groups[without_group])
        if not kept:
            raise cfg.ConfigError(f"removing '{without_group}' leaves {name} with no track inputs")
        model = dataclasses.replace(model, track_inputs=kept)
    if max_train_jets is not None:
        model = dataclasses.replace(
            model, training=dataclasses.replace(model.training, max_train_jets=max_train_jets)
        )
    return model


def _transfer_job(config: dict, args: argparse.Namespace) -> cfg.ModelConfig:
    """The model section of a transfer-learning job, after checking the flags that go with it."""
    transfer = config["transfer"]
    if args.search_trial or args.without_group or args.max_train_jets:
        raise cfg.ConfigError("--transfer goes with neither --search-trial, --without-group nor"
                              " --max-train-jets (use --train-jets)")  # fmt: skip
    if transfer["model"] != args.model:
        raise cfg.ConfigError(f"--transfer: transfer.model is not '{args.model}'")
    if args.train_jets is None:
        raise cfg.ConfigError("--transfer needs --train-jets (target training jets)")
    if (args.pretrained is None) != (args.transfer == "scratch"):
        raise cfg.ConfigError(
            f"--transfer {args.transfer}: --pretrained is "
            + ("not used from scratch" if args.transfer == "scratch" else "required")
        )
    if not 0 <= args.member < transfer["seeds"]:
        raise cfg.ConfigError(f"--member {args.member} outside 0..{transfer['seeds'] - 1}")
    section = cfg.transfer_section(config, args.transfer, args.train_jets)
    return cfg.section(cfg.ModelConfig, section)


def _search_trial(config: dict, name: str, trial: str) -> cfg.ModelConfig:
    """The config of a random-search trial ('nominal': the model as configured, same jets)."""
    if config["search"]["model"] != name:
        raise cfg.ConfigError(f"--search-trial: search.model is not '{name}'")
    if trial != "nominal" and not (trial.isdigit() and int(trial) < config["search"]["trials"]):
        raise cfg.ConfigError(
            f"--search-trial must be 'nominal' or 0..{config['search']['trials'] - 1}"
        )
    index = None if trial == "nominal" else int(trial)
    return cfg.section(cfg.ModelConfig, cfg.trial_section(config, index))


def cmd_export_onnx(args: argparse.Namespace, config: dict) -> None:
    """Export a trained member to ONNX, its input normalisation in the metadata."""
    from jettag.export import export_onnx

    metadata = export_onnx(args.checkpoint, args.output)
    log.info("exported %s to %s: track inputs %s, jet inputs %s", args.checkpoint, args.output,
             metadata["track_features"], metadata["jet_features"])  # fmt: skip


def cmd_fit_baseline(args: argparse.Namespace, config: dict) -> None:
    """Fit the track templates of an IP3D-like baseline on the training split."""
    import h5py

    from jettag.atomic import write_json
    from jettag.models import ip3d

    baseline = cfg.baseline_config(config, args.baseline)
    with h5py.File(args.data_dir / "train.h5", "r") as f:
        jets, tracks = f["jets"][:], f["tracks"][:]
        classes = [str(c) for c in f["jets"].attrs["flavour_label"]]
    templates = ip3d.fit_templates(
        tracks, jets["flavour_label"], classes, baseline.sd0_bins, baseline.sz0_bins
    )
    write_json(args.output, templates.to_dict())


def cmd_predict(args: argparse.Namespace, config: dict) -> None:
    """Score the test split with a model's members or a baseline."""
    from jettag.evaluation.predict import predict

    if args.tagger in config["models"]:
        kind = "network"
    else:
        kind = cfg.baseline_config(config, args.tagger).kind
    predict(args.tagger, args.test, args.members, kind, args.output)


def cmd_evaluate(args: argparse.Namespace, config: dict) -> None:
    """Metrics (AUC, working points, ROC) of one tagger's predictions."""
    from jettag.evaluation.evaluate import evaluate

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    metrics = evaluate(args.predictions, evaluation, args.output)
    wp = metrics["working_points"].get("77") or next(iter(metrics["working_points"].values()))

    def shown(name: str, digits: int) -> str:
        text = f"{wp[f'{name}_rejection']:.{digits}f}"
        return f"> {text} (lower limit)" if wp[f"{name}_rejection_is_lower_limit"] else text

    log.info("evaluate %s: AUC(b vs light) %.4f, light rejection %s, c rejection %s (77%% WP)",
             metrics["tagger"], metrics["auc"]["b_vs_light"], shown("light", 1),
             shown("c", 2))  # fmt: skip


def cmd_working_points(args: argparse.Namespace, config: dict) -> None:
    """Table of cuts, efficiencies and rejections at every working point, several taggers."""
    from jettag.evaluation.working_points import working_point_table

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    working_point_table(args.predictions, evaluation.f_c, evaluation.working_points,
                        args.output_json, args.output_md)  # fmt: skip


def cmd_performance(args: argparse.Namespace, config: dict) -> None:
    """Efficiency and rejection vs jet pT at a working point, and D_b per flavour, of a tagger."""
    from jettag.evaluation.working_points import efficiency_vs_pt, score_histograms

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    efficiency_vs_pt(args.predictions, evaluation.f_c, evaluation.pt_working_point,
                     evaluation.pt_bins_gev, args.output_pt)  # fmt: skip
    wps = evaluation.working_points
    score_histograms(args.predictions, evaluation.f_c, wps, args.output_scores)


def _tagger_of(path: Path) -> str:
    """The tagger named in a results JSON file."""
    return json.loads(Path(path).read_text())["tagger"]


def cmd_plot_pt(args: argparse.Namespace, config: dict) -> None:
    """b efficiency, c and light rejection vs jet pT of several taggers."""
    from jettag.plotting.performance import plot_efficiency_vs_pt

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    taggers = [_tagger_of(p) for p in args.pt_files]
    labels = [cfg.tagger_label(config, t) for t in taggers]
    plot_efficiency_vs_pt(args.pt_files, labels, args.output_prefix, plots.atlas_text,
                          _sqrt_s_tev(config, cfg.tagger_dataset(config, taggers[0])),
                          plots.formats)  # fmt: skip


def cmd_plot_scores(args: argparse.Namespace, config: dict) -> None:
    """D_b distribution per flavour of one tagger, with the working-point cuts."""
    from jettag.plotting.performance import plot_score_histograms

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    tagger = _tagger_of(args.scores)
    plot_score_histograms(args.scores, cfg.tagger_label(config, tagger), args.output_stem,
                          plots.atlas_text, _sqrt_s_tev(config, cfg.tagger_dataset(config, tagger)),
                          plots.formats)  # fmt: skip


def cmd_learning_curve(args: argparse.Namespace, config: dict) -> None:
    """Training and validation loss of a model trained on growing training sets."""
    from jettag.evaluation.learning_curve import learning_curve

    cfg.model_config(config, args.model)
    result = learning_curve(args.checkpoints, args.data_dir, args.output, args.model)
    for point in result["points"]:
        log.info("learning curve %s: %d jets, train loss %.4f, val loss %.4f", args.model,
                 point["train_jets"], point["train_loss"], point["val_loss"])  # fmt: skip


def cmd_plot_learning_curve(args: argparse.Namespace, config: dict) -> None:
    """Draw loss vs training-set size."""
    from jettag.plotting.curves import plot_learning_curve

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    model = json.loads(Path(args.curve).read_text())["model"]
    plot_learning_curve(args.curve, cfg.tagger_label(config, model), args.output_stem,
                        plots.atlas_text, _sqrt_s_tev(config, cfg.tagger_dataset(config, model)),
                        plots.formats)  # fmt: skip


def _named_paths(items: Sequence[str]) -> dict[str, Path]:
    """NAME=PATH arguments as a mapping."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise cfg.ConfigError(f"expected NAME=PATH, got '{item}'")
        out[name] = Path(path)
    return out


def cmd_ablation(args: argparse.Namespace, config: dict) -> None:
    """Rejection lost by retraining a model without each feature group."""
    from jettag.evaluation.ablation import ablation_summary

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    groups = cfg.feature_groups(config, args.model)
    result = ablation_summary(args.model, args.nominal, _named_paths(args.variants), groups,
                              evaluation.f_c, evaluation.pt_working_point, args.output)  # fmt: skip
    for group, entry in result["groups"].items():
        log.info("ablation %s without %s: light rejection lost %s", args.model, group,
                 entry["light_rejection_loss"])  # fmt: skip


def cmd_saliency(args: argparse.Namespace, config: dict) -> None:
    """Saliency maps of a trained model on the test split."""
    from jettag.evaluation.saliency import saliency_maps

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    saliency_maps(args.checkpoint, args.test, evaluation.f_c, args.output,
                  evaluation.saliency.n_tracks, evaluation.saliency.working_point)  # fmt: skip


def cmd_importance(args: argparse.Namespace, config: dict) -> None:
    """Permutation importance of each feature group of a trained model on the test split."""
    from jettag.evaluation.importance import permutation_importance

    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    groups = {name: list(inputs) for name, inputs in cfg.feature_groups(config, args.model).items()}
    permutation_importance(args.checkpoint, args.test, evaluation.f_c, args.output, groups,
                           evaluation.pt_working_point, seed=config["seed"])  # fmt: skip


def cmd_plot_saliency(args: argparse.Namespace, config: dict) -> None:
    """Draw the saliency heat maps of a model."""
    from jettag.plotting.saliency import plot_saliency

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    dataset = cfg.tagger_dataset(config, _tagger_of(args.saliency))
    plot_saliency(args.saliency, args.output_stem, plots.atlas_text,
                  _sqrt_s_tev(config, dataset), plots.formats)  # fmt: skip


def cmd_plot_importance(args: argparse.Namespace, config: dict) -> None:
    """Draw rejection lost per feature group (permutation importance or ablation)."""
    from jettag.plotting.saliency import plot_permutation_importance

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    dataset = cfg.tagger_dataset(config, _tagger_of(args.importance))
    plot_permutation_importance(args.importance, args.output_stem, plots.atlas_text,
                                _sqrt_s_tev(config, dataset), plots.formats)  # fmt: skip


def cmd_input_histograms(args: argparse.Namespace, config: dict) -> None:
    """Per-flavour histograms of every model input: raw, transformed, normalised, reweighted."""
    from jettag.evaluation.input_histograms import input_histograms

    cfg.sample_config(config, args.dataset)
    input_histograms(args.data_dir, args.output, args.split)


def cmd_plot_inputs(args: argparse.Namespace, config: dict) -> None:
    """Draw the input histograms of a dataset and its pT reweighting."""
    from jettag.plotting.inputs import plot_inputs

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    sample = cfg.sample_config(config, args.dataset)
    plot_inputs(args.histograms, sample.label, args.output_prefix, plots.atlas_text,
                sample.sqrt_s_gev / 1000.0, plots.formats)  # fmt: skip


def cmd_search_summary(args: argparse.Namespace, config: dict) -> None:
    """Rank random-search trials by validation loss and write the best model section."""
    from jettag.evaluation.search import search_summary

    result = search_summary(config, _named_paths(args.histories), args.output_json,
                            args.output_md, args.output_best)  # fmt: skip
    best = result["trials"][0]
    log.info("search %s: best trial %s, val loss %.4f (as configured: %s)", result["model"],
             best["trial"], best["val_loss"], result["nominal_val_loss"])  # fmt: skip


def cmd_plot_search(args: argparse.Namespace, config: dict) -> None:
    """Draw validation loss vs each searched hyper-parameter."""
    from jettag.plotting.curves import plot_search

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    model = json.loads(Path(args.search).read_text())["model"]
    plot_search(args.search, cfg.tagger_label(config, model), args.output_stem,
                plots.atlas_text, _sqrt_s_tev(config, cfg.tagger_dataset(config, model)),
                plots.formats)  # fmt: skip


def cmd_transfer_summary(args: argparse.Namespace, config: dict) -> None:
    """AUC and rejections of every transfer-learning run on the target test split."""
    from jettag.evaluation.transfer import transfer_summary

    transfer = config["transfer"]
    if transfer["model"] is None:
        raise cfg.ConfigError("transfer-summary: transfer.model is not set")
    evaluation = cfg.section(cfg.EvaluationConfig, config["evaluation"])
    result = transfer_summary(
        transfer["model"], _named_paths(args.runs), args.pretrained, args.data_dir,
        evaluation.f_c, evaluation.pt_working_point,
        cfg.sample_config(config, transfer["target"]).label, args.output_json, args.output_md,
    )  # fmt: skip
    for strategy, points in result["points"].items():
        log.info("transfer %s: light rejection %s", strategy,
                 ", ".join(f"{p['train_jets']}: {p['light_rejection_mean']:.1f}"
                           for p in points))  # fmt: skip


def cmd_plot_transfer(args: argparse.Namespace, config: dict) -> None:
    """Draw light rejection and AUC vs number of target training jets per strategy."""
    from jettag.plotting.transfer import plot_transfer

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    model = json.loads(Path(args.summary).read_text())["model"]
    source = cfg.tagger_dataset(config, model)
    sample = cfg.sample_config(config, source)
    if sample.source == "generate":  # the process in symbols, as physicists write it
        source = {"ttbar": "$t\\bar{t}$", "zprime": "$Z'$"}[sample.process]
    plot_transfer(args.summary, f"{cfg.tagger_label(config, model)} pretrained on {source}",
                  args.output_stem, plots.atlas_text,
                  _sqrt_s_tev(config, config["transfer"]["target"]), plots.formats)  # fmt: skip


def cmd_plot_roc(args: argparse.Namespace, config: dict) -> None:
    """Draw the ROC figure from metrics files."""
    from jettag.plotting.roc import plot_roc

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    taggers = [json.loads(Path(p).read_text())["tagger"] for p in args.metrics]
    labels = [cfg.tagger_label(config, t) for t in taggers]
    reference = plots.reference or next(iter(config["baselines"]), taggers[0])
    dataset = cfg.tagger_dataset(config, taggers[0])
    plot_roc(args.metrics, labels, reference, args.output_stem, plots.atlas_text,
             _sqrt_s_tev(config, dataset), plots.formats)  # fmt: skip


def cmd_plot_loss(args: argparse.Namespace, config: dict) -> None:
    """Draw loss curves of a model's members."""
    from jettag.plotting.curves import plot_loss

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    model = cfg.model_config(config, args.model)
    plot_loss(args.histories, cfg.tagger_label(config, args.model), args.output_stem,
              plots.atlas_text, _sqrt_s_tev(config, model.dataset), plots.formats)  # fmt: skip


def cmd_sample_histograms(args: argparse.Namespace, config: dict) -> None:
    """Per-flavour validation histograms of an ingested sample."""
    from jettag.evaluation.sample_histograms import sample_histograms

    cfg.sample_config(config, args.sample)
    result = sample_histograms(args.input, args.output)
    log.info("sample %s: jets %s, fractions %s", args.sample, result["n_jets"],
             {k: round(v, 3) for k, v in result["fractions"].items()})  # fmt: skip


def cmd_plot_sample(args: argparse.Namespace, config: dict) -> None:
    """Draw the validation plots of a sample."""
    from jettag.plotting.sample import plot_sample

    plots = cfg.section(cfg.PlotsConfig, config["plots"])
    sample = cfg.sample_config(config, args.sample)
    plot_sample(args.histograms, sample.label, args.output_prefix, plots.atlas_text,
                sample.sqrt_s_gev / 1000.0, plots.formats)  # fmt: skip


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
        sample = cfg.sample_config(config, name)
        for path, layout in files.items():
            sys.stdout.write(f"# sample {name}, {path}:\n")
            sys.stdout.writelines(f"#   {line}\n" for line in layout.describe(sample))


def _parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stage."""
    parser = argparse.ArgumentParser(prog="jettag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True)

    def stage(name: str, func: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", type=Path, required=True, help="analysis YAML config")
        p.set_defaults(func=func)
        return p

    p = stage("check-config", cmd_check_config, "validate a config and print it with defaults")
    p = stage("generate", cmd_generate, "generate one shard of a sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--output", type=Path, required=True, help="ROOT file to write")
    p = stage("ingest", cmd_ingest, "ROOT/HDF5 inputs -> canonical HDF5")
    p.add_argument("--sample", required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("inputs", type=Path, nargs="+", help="ROOT or HDF5 files")
    p = stage("prepare", cmd_prepare, "canonical HDF5 -> train/val/test, norm.yaml, weights.yaml")
    p.add_argument("--dataset", required=True)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--output-dir", type=Path, required=True)
    p = stage("train", cmd_train, "train one member of a model")
    p.add_argument("--model", required=True)
    p.add_argument("--member", type=int, default=0)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--without-group", default=None,
                   help="ablation: leave out this evaluation.feature_groups group")  # fmt: skip
    p.add_argument("--max-train-jets", type=int, default=None,
                   help="train on the first N training jets (learning curve)")  # fmt: skip
    p.add_argument("--search-trial", default=None,
                   help="random search: trial number, or 'nominal'")  # fmt: skip
    p.add_argument("--transfer", choices=cfg.TRANSFER_STRATEGIES, default=None,
                   help="transfer learning onto transfer.target (--member: the seed)")  # fmt: skip
    p.add_argument("--train-jets", type=int, default=None,
                   help="transfer: train on the first N target training jets")  # fmt: skip
    p.add_argument("--pretrained", type=Path, default=None,
                   help="transfer: best.pt of the pretrained model (finetune, frozen)")  # fmt: skip
    p = stage("export-onnx", cmd_export_onnx, "export a trained member to ONNX")
    p.add_argument("--checkpoint", type=Path, required=True, help="best.pt of the member")
    p.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    p = stage("fit-baseline", cmd_fit_baseline, "fit an IP3D-like baseline's templates")
    p.add_argument("--baseline", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("predict", cmd_predict, "score the test split with a tagger")
    p.add_argument("--tagger", required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("members", type=Path, nargs="+", help="best.pt of each member, or templates")
    p = stage("evaluate", cmd_evaluate, "metrics of one tagger")
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("sample-histograms", cmd_sample_histograms, "validation histograms of a sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--input", type=Path, required=True, help="ingested (canonical) HDF5")
    p.add_argument("--output", type=Path, required=True, help="JSON")
    p = stage("plot-sample", cmd_plot_sample, "validation plots of a sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--histograms", type=Path, required=True)
    p.add_argument("--output-prefix", type=Path, required=True)
    p = stage("working-points", cmd_working_points, "working-point table of several taggers")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("predictions", type=Path, nargs="+")
    p = stage("performance", cmd_performance, "efficiency vs pT and D_b histograms of a tagger")
    p.add_argument("--predictions", type=Path, required=True)
    p.add_argument("--output-pt", type=Path, required=True, help="JSON: efficiency vs pT")
    p.add_argument("--output-scores", type=Path, required=True, help="JSON: D_b histograms")
    p = stage("plot-pt", cmd_plot_pt, "efficiency and rejection vs jet pT")
    p.add_argument("--output-prefix", type=Path, required=True)
    p.add_argument("pt_files", type=Path, nargs="+")
    p = stage("plot-scores", cmd_plot_scores, "D_b distributions per flavour")
    p.add_argument("--scores", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("learning-curve", cmd_learning_curve, "loss vs training-set size")
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("checkpoints", type=Path, nargs="+", help="best.pt of each training size")
    p = stage("plot-learning-curve", cmd_plot_learning_curve, "draw loss vs training-set size")
    p.add_argument("--curve", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("ablation", cmd_ablation, "rejection lost without each feature group")
    p.add_argument("--model", required=True)
    p.add_argument("--nominal", type=Path, required=True, help="predictions of the full model")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("variants", nargs="+", help="GROUP=predictions.h5 of each retraining")
    p = stage("saliency", cmd_saliency, "saliency maps of a trained model")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("importance", cmd_importance, "permutation importance of feature groups")
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p = stage("plot-saliency", cmd_plot_saliency, "draw saliency heat maps")
    p.add_argument("--saliency", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-importance", cmd_plot_importance, "draw rejection lost per feature group")
    p.add_argument("--importance", type=Path, required=True, help="importance or ablation JSON")
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("input-histograms", cmd_input_histograms, "histograms of every model input")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-dir", type=Path, required=True, help="prepared dataset directory")
    p.add_argument("--split", choices=["train", "val", "test"], default="train")
    p.add_argument("--output", type=Path, required=True)
    p = stage("plot-inputs", cmd_plot_inputs, "draw input distributions and the reweighting")
    p.add_argument("--dataset", required=True)
    p.add_argument("--histograms", type=Path, required=True)
    p.add_argument("--output-prefix", type=Path, required=True)
    p = stage("search-summary", cmd_search_summary, "rank random-search trials")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("--output-best", type=Path, required=True, help="YAML: the best model section")
    p.add_argument("histories", nargs="+", help="TRIAL=history.csv of each trial")
    p = stage("transfer-summary", cmd_transfer_summary,
              "evaluate transfer-learning runs on the target test split")  # fmt: skip
    p.add_argument("--data-dir", type=Path, required=True, help="prepared target dataset")
    p.add_argument("--pretrained", type=Path, required=True, help="best.pt of the source model")
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-md", type=Path, required=True)
    p.add_argument("runs", nargs="+", help="STRATEGY/JETS/SEED=best.pt of each run")
    p = stage("plot-transfer", cmd_plot_transfer, "draw the transfer-learning scan")
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-search", cmd_plot_search, "validation loss vs each hyper-parameter")
    p.add_argument("--search", type=Path, required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p = stage("plot-roc", cmd_plot_roc, "ROC curves with ratio panels")
    p.add_argument("--output-stem", type=Path, required=True, help="path without extension")
    p.add_argument("metrics", type=Path, nargs="+")
    p = stage("plot-loss", cmd_plot_loss, "loss curves of a model")
    p.add_argument("--model", required=True)
    p.add_argument("--output-stem", type=Path, required=True)
    p.add_argument("histories", type=Path, nargs="+")
    return parser


class TerminatedError(BaseException):
    """SIGTERM arrived: unwind (a BaseException, so no `except Exception` swallows it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM handler: raise once, so that temporary outputs are removed on the way out."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup
    raise TerminatedError(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jettag` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    start = time.perf_counter()
    try:
        # without a handler SIGTERM ends Python at once and leaves the temporaries of atomic
        # writes behind; raising unwinds and removes them (training installs its own flag)
        with on_sigterm(_raise_terminated):
            from jettag.errors import InputError
            from jettag.training.loop import TrainingInterruptedError

            try:
                config = cfg.load_config(args.config)
                args.func(args, config)
            except (cfg.ConfigError, InputError) as err:
                print(f"jettag {args.stage}: error: {err}", file=sys.stderr)
                return 2
            except TrainingInterruptedError as err:
                print(f"jettag {args.stage}: interrupted: {err}", file=sys.stderr)
                return 128 + signal.SIGTERM
    except TerminatedError:
        print(f"jettag {args.stage}: terminated by SIGTERM; no partial output is left,"
              " rerun the same command", file=sys.stderr)  # fmt: skip
        return 128 + signal.SIGTERM
    log.info("%s finished in %.1f s", args.stage, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
