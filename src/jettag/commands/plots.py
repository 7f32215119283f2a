"""Plot stages: figures drawn from numbers files, every text on them from the settings.

`@plot` declares a plot stage and wraps its drawing in the one runner they share: it builds
the figure text (experiment label, sqrt(s), sample) and the formats from the settings, reads
the results files into their dataclasses (`kind`, jettag.io.results.Result), checks which
tagger or model each belongs to against the stage's job (a single-tagger plot of `dips`
refuses the file of `ip3d`) and the taggers the settings label, and hands the drawing the
results and their legend labels.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jettag import config as cfg
from jettag import stages
from jettag.commands.registry import (
    Argument,
    JobSettings,
    SettingsFunction,
    command,
    path,
    paths,
)
from jettag.errors import ConfigError

if TYPE_CHECKING:
    from jettag.plotting.style import FigureText


@dataclasses.dataclass(frozen=True)
class Figure:
    """What the runner hands a drawing: the figure text, formats and legend labels."""

    text: FigureText
    formats: list[str]
    labels: list[str]  # of the results files' taggers, in the files' order
    results: list  # the results files read into their dataclasses, in order

    @property
    def label(self) -> str:
        """The legend label of a single-tagger figure."""
        (label,) = self.labels
        return label

    @property
    def result(self) -> Any:
        """The results of a single-tagger figure."""
        (result,) = self.results
        return result


# what every plot stage's settings hold of the config's sections
FIGURE = {"plots": cfg.PlotsConfig, "sample": cfg.SampleConfig}
Drawing = Callable[[argparse.Namespace, JobSettings, Figure], None]


def _read(
    args: argparse.Namespace, settings: JobSettings, results: str, kind: str, owner: str
) -> tuple[list[str], list]:
    """The results files the command was given, read as `kind` ("module:Class" of a Result,
    or "module:function" that reads one), and the legend labels of their taggers, checked."""
    given = getattr(args, results)
    files = [given] if isinstance(given, Path) else list(given)
    module, name = kind.split(":")
    reader = getattr(importlib.import_module(module), name)
    loaded = [(reader.read if hasattr(reader, "read") else reader)(p) for p in files]
    owners = [getattr(result, owner) for result in loaded]
    if isinstance(given, Path):  # a single-tagger (or model) figure: its one wildcard names it
        (wildcard,) = args.stage_entry.wildcards
        job = getattr(args, wildcard)
        if owners[0] != job:
            raise ConfigError(f"{given}: results of '{owners[0]}', not of '{job}'")
    labels = settings.labels
    unknown = [f"{p} ({t})" for t, p in zip(owners, files, strict=True) if t not in labels]
    if unknown:
        raise ConfigError(f"results of taggers this plot does not draw: {unknown}; it draws"
                          f" {sorted(labels)}")  # fmt: skip
    return [labels[t] for t in owners], loaded


def open_figure(
    args: argparse.Namespace, settings: JobSettings, results: str | None, kind: str | None,
    owner: str,
) -> Figure:  # fmt: skip
    """The opening every plot shares: figure text, formats, class styles, the results and
    their labels."""
    from jettag.plotting.style import FigureText, use_class_styles

    use_class_styles(settings.class_styles)
    label, sample = settings.plots.experiment_label, settings.sample
    text = FigureText(label.experiment, label.status, sample.sqrt_s_gev / 1000.0, sample.label)
    labels, loaded = ([], []) if results is None else _read(args, settings, results, kind, owner)
    return Figure(text, list(settings.plots.formats), labels, loaded)


def plot(
    name: str,
    help: str,
    settings: SettingsFunction,
    *arguments: Argument,
    results: str | None = None,
    kind: str | None = None,
    owner: str = "tagger",
) -> Callable[[Drawing], Drawing]:
    """Declare a plot stage whose drawing is the decorated function (see the module docstring).

    `results` names the argument holding the results file(s), read as `kind` ("module:Class"
    of their Result dataclass), whose `owner` ("tagger" or "model") gives the legend labels;
    None for figures of a sample or dataset.
    """

    def register(draw: Drawing) -> Drawing:
        def run(args: argparse.Namespace, stage_settings: JobSettings) -> None:
            figure = open_figure(args, stage_settings, results, kind, owner)
            draw(args, stage_settings, figure)

        run.__doc__ = draw.__doc__
        command(name, help, settings, *arguments, sections=FIGURE)(run)
        return draw

    return register


def _stem(help: str | None = None) -> Argument:
    return path("--output-stem", help or "path without extension")


@plot("plot-roc", "ROC curves with ratio panels", stages.plot_roc,
      path("--comparison", "the dataset's working-points JSON (paired ratios)"), _stem(),
      paths("metrics"), results="metrics", kind="jettag.evaluation.evaluate:Metrics")  # fmt: skip
def plot_roc(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw the ROC figure of a dataset from metrics files."""
    from jettag.evaluation.working_points import WorkingPointTable
    from jettag.plotting.roc import plot_roc

    comparison = WorkingPointTable.read(args.comparison)
    paired = comparison.paired or {}
    if paired.get("reference") != settings.reference:
        raise ConfigError(f"{args.comparison}: ratios to {paired.get('reference')!r}, the"
                          f" config's reference is '{settings.reference}'")  # fmt: skip
    plot_roc(figure.results, figure.labels, comparison, args.output_stem, figure.text,
             figure.formats)  # fmt: skip


@plot("plot-pt", "efficiency and rejection vs jet pT", stages.dataset_figure,
      path("--output-prefix"), paths("pt_files"), results="pt_files",
      kind="jettag.evaluation.working_points:EfficiencyVsPt")  # fmt: skip
def plot_pt(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Signal efficiency and background rejections vs jet pT of several taggers."""
    from jettag.plotting.performance import plot_efficiency_vs_pt

    plot_efficiency_vs_pt(figure.results, figure.labels, args.output_prefix, figure.text,
                          figure.formats)  # fmt: skip


@plot("plot-scores", "discriminant distributions per class", stages.tagger_figure,
      path("--scores"), _stem(), results="scores",
      kind="jettag.evaluation.working_points:ScoreHistograms")  # fmt: skip
def plot_scores(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Discriminant distribution per class of one tagger, with the working-point cuts."""
    from jettag.plotting.performance import plot_score_histograms

    plot_score_histograms(figure.result, figure.label, args.output_stem, figure.text,
                          figure.formats)  # fmt: skip


@plot("plot-fraction-scan", "draw a fraction scan", stages.dataset_figure,
      path("--scan"), _stem())  # fmt: skip
def plot_fraction_scan(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw the fraction scan of a dataset's taggers."""
    from jettag.evaluation.fraction_scan import FractionScan
    from jettag.plotting.multiclass import plot_fraction_scan

    scan = FractionScan.read(args.scan)
    unknown = sorted(set(scan.taggers) - set(settings.labels))
    if unknown:
        raise ConfigError(f"{args.scan}: taggers this plot does not draw: {unknown}")
    plot_fraction_scan(scan, [settings.labels[t] for t in scan.taggers], args.output_stem,
                       figure.text, figure.formats)  # fmt: skip


@plot("plot-multiclass", "confusion matrix and task ROCs", stages.tagger_figure,
      path("--result", "results/multiclass/<tagger>.json"), path("--output-prefix"),
      results="result", kind="jettag.evaluation.multiclass:MulticlassSummary")  # fmt: skip
def plot_multiclass(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Confusion matrix and binary-task ROCs of one tagger."""
    from jettag.plotting.multiclass import plot_confusion, plot_task_rocs

    prefix = args.output_prefix
    plot_confusion(figure.result, figure.label, Path(f"{prefix}_confusion"), figure.text,
                   figure.formats)  # fmt: skip
    plot_task_rocs(figure.result, figure.label, Path(f"{prefix}_tasks"), figure.text,
                   figure.formats)  # fmt: skip


@plot("plot-vertexing", "vertex-finding efficiency and fake rate vs jet pT", stages.model_figure,
      path("--result", "results/vertexing/<model>.json"), path("--output-prefix"),
      results="result", owner="model",
      kind="jettag.evaluation.vertexing:VertexingPerformance")  # fmt: skip
def plot_vertexing(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Vertex-finding efficiency, reco-vertex rate and exclusive vertex efficiency vs jet pT."""
    from jettag.plotting.vertexing import plot_vertexing

    plot_vertexing(figure.result, figure.label, args.output_prefix, figure.text, figure.formats)


@plot("plot-loss", "loss curves of a model", stages.training_figure, _stem(),
      path("--diagnosis", "write each member's loss-curve diagnosis here (JSON)", default=None),
      paths("histories"))  # fmt: skip
def plot_loss(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw loss curves of a model's members, each with its loss-curve diagnosis."""
    from jettag.atomic import write_json
    from jettag.plotting.curves import plot_loss
    from jettag.training.diagnosis import diagnose_histories, summary

    diagnoses = diagnose_histories(args.histories)
    if args.diagnosis is not None:
        members = [{"history": str(p), **d} for p, d in zip(args.histories, diagnoses, strict=True)]
        write_json(args.diagnosis, {"model": args.model, "members": members})
    plot_loss(args.histories, settings.labels[args.model], args.output_stem, figure.text,
              figure.formats, [summary(d) for d in diagnoses])  # fmt: skip


@plot("plot-learning-curve", "draw loss vs training-set size", stages.training_figure,
      path("--curve"), _stem(), results="curve", owner="model",
      kind="jettag.io.results:LearningCurve")  # fmt: skip
def plot_learning_curve(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw loss vs training-set size."""
    from jettag.plotting.curves import plot_learning_curve

    plot_learning_curve(figure.result, figure.label, args.output_stem, figure.text,
                        figure.formats)  # fmt: skip


@plot("plot-lr-finder", "draw a learning-rate range test", stages.training_figure,
      path("--result", "results/lr_finder/<model>.json"), _stem(), results="result",
      owner="model", kind="jettag.io.results:LrRangeTest")  # fmt: skip
def plot_lr_finder(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw a learning-rate range test."""
    from jettag.plotting.lr_finder import plot_lr_finder

    plot_lr_finder(figure.result, figure.label, args.output_stem, figure.text, figure.formats)


@plot("plot-study", "draw a model-choice study", stages.plot_study,
      path("--summary", "results/studies/<study>.json"), _stem())  # fmt: skip
def plot_study(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw a model-choice study."""
    from jettag.io.results import StudySummary
    from jettag.plotting.study import plot_study

    summary, model = StudySummary.read(args.summary), settings.model
    if (summary.study, summary.model) != (args.study, model):
        raise ConfigError(f"{args.summary}: study '{summary.study}' of '{summary.model}', not"
                          f" '{args.study}' of '{model}'")  # fmt: skip
    plot_study(summary, settings.labels[model], settings.title, args.output_stem,
               figure.text, figure.formats)  # fmt: skip


@plot("plot-search", "validation loss vs each hyper-parameter", stages.training_figure,
      path("--search"), _stem(), results="search", owner="model",
      kind="jettag.evaluation.search:SearchSummary")  # fmt: skip
def plot_search(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw validation loss vs each searched hyper-parameter."""
    from jettag.plotting.curves import plot_search

    plot_search(figure.result, figure.label, args.output_stem, figure.text, figure.formats)


@plot("plot-saliency", "draw saliency heat maps", stages.model_figure,
      path("--saliency"), _stem(), results="saliency",
      kind="jettag.io.results:SaliencyMaps")  # fmt: skip
def plot_saliency(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw the saliency heat maps of a model."""
    from jettag.plotting.saliency import plot_saliency

    plot_saliency(figure.result, figure.label, args.output_stem, figure.text, figure.formats)


@plot("plot-importance", "draw rejection lost per feature group", stages.model_figure,
      path("--importance", "importance or ablation JSON"), _stem(),
      results="importance", kind="jettag.io.results:read_importance")  # fmt: skip
def plot_importance(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw rejection lost per feature group (permutation importance or ablation)."""
    from jettag.plotting.saliency import plot_permutation_importance

    plot_permutation_importance(figure.result, figure.label, args.output_stem, figure.text,
                                figure.formats)  # fmt: skip


@plot("plot-transfer", "draw the transfer-learning scan", stages.plot_transfer,
      path("--summary"), _stem(), results="summary", owner="model",
      kind="jettag.io.results:TransferSummary")  # fmt: skip
def plot_transfer(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw light rejection and AUC vs number of target training jets per strategy."""
    from jettag.plotting.transfer import plot_transfer

    source = settings.source
    name = source["name"]
    if "process" in source:  # a generated sample: its process in symbols
        name = {"ttbar": "$t\\bar{t}$", "zprime": "$Z'$"}[source["process"]]
    plot_transfer(figure.result, f"{figure.label} pretrained on {name}", args.output_stem,
                  figure.text, figure.formats)  # fmt: skip


@plot("plot-sample", "validation plots of a sample", stages.plot_sample,
      path("--histograms"), path("--output-prefix"))  # fmt: skip
def plot_sample(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw the validation plots of a sample."""
    from jettag.evaluation.sample_histograms import SampleHistograms
    from jettag.plotting.sample import plot_sample

    histograms = SampleHistograms.read(args.histograms)
    plot_sample(histograms, args.output_prefix, figure.text, figure.formats)


@plot("plot-inputs", "draw input distributions and the reweighting", stages.plot_inputs,
      path("--histograms"), path("--output-prefix"))  # fmt: skip
def plot_inputs(args: argparse.Namespace, settings: JobSettings, figure: Figure) -> None:
    """Draw the input histograms of a dataset and its pT reweighting."""
    from jettag.evaluation.input_histograms import InputHistograms
    from jettag.plotting.inputs import plot_inputs

    histograms = InputHistograms.read(args.histograms)
    plot_inputs(histograms, args.output_prefix, figure.text, figure.formats)
