"""Working-point performance: a table of cuts and rejections, efficiencies vs jet pT, D shapes.

Each function reads FTAG-layout predictions files (`jets` with `<tagger>_pb/_pc/_pu`, `pt`,
`flavour_label`; attributes `flavour_label` and `tagger`) and writes a JSON result that the
plotting code only draws. Jet pT in the canonical and predictions files is in GeV
(io/canonical.py), so every pT quantity here carries `_gev` in its name.

Jets are unweighted, as in evaluate.py (ATLAS quotes performance on the natural spectrum); the
binomial errors still go through N_eff = (sum w)^2 / sum w^2 so weights can be added later.

Every background rejection comes with `<bkg>_rejection_lower_limit`, the one-sided
Clopper-Pearson lower limit at the file's `rejection_limit_cl` (metrics.rejection_with_limit).
Where no background jet passes the cut, `<bkg>_rejection` is that limit, with
`<bkg>_rejection_is_lower_limit` true and a null error, instead of an infinite value. Undefined
values (no background jets in a pT bin, or no signal jets to define a cut) are written as
null. The discriminant (a signal class and background fractions) is the caller's, so every
table and curve works for D_b, D_c, an Xbb or a JetClass discriminant alike.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jettag.atomic import json_safe
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import FEW_PASSING, INTERVAL_CL, REJECTION_LIMIT_CL
from jettag.evaluation.paired import check_same_jets, paired_ratios
from jettag.evaluation.performance import (
    TaggedJets,
    cut_at_efficiency,
    performance_at_cut,
    read_tagged_jets,
    wp_name,
)
from jettag.io.results import OMIT_NONE, Result


@dataclasses.dataclass
class WorkingPointTable(Result):
    """results/working_points/<dataset>.json: every tagger's performance at every working point,
    the pseudo-continuous bins and, with a reference tagger, the paired ratios to it."""

    discriminant: dict
    working_points: list[float]
    rejection_limit_cl: float
    interval_cl: float
    few_passing: int
    n_jets: dict[str, dict[str, int]]
    rows: list[dict]
    pseudo_continuous: dict[str, dict]
    predictions: list[str]
    paired: dict | None = dataclasses.field(default=None, metadata=OMIT_NONE)

    def markdown(self) -> str:
        """The table as markdown (results/working_points/<dataset>.md)."""
        return working_point_markdown(self.to_dict())


@dataclasses.dataclass
class EfficiencyVsPt(Result):
    """results/performance/<tagger>_pt.json: efficiencies and rejections in jet-pT bins at one
    working point, for the inclusive cut and for a cut flat in each bin."""

    tagger: str
    discriminant: dict
    working_point: float
    inclusive_cut: float
    rejection_limit_cl: float
    pt_bins_gev: list[float]
    n_jets: dict[str, list[int]]
    strategies: dict[str, dict[str, list]]  # strategy -> quantity -> one value per bin
    predictions: str


@dataclasses.dataclass
class ScoreHistograms(Result):
    """results/performance/<tagger>_scores.json: the discriminant's distribution per class."""

    tagger: str
    discriminant: dict
    edges: list[float]
    overflow: str
    histograms: dict[str, dict]  # class -> density, density_error, n_jets
    working_points: list[dict]  # working_point, cut
    predictions: str


def working_point_table(
    predictions: Sequence[Path],
    discriminant: Discriminant,
    working_points: Sequence[float],
    reference: str | None = None,
    roc_efficiencies: Sequence[float] = (),
    replicas: int = 200,
    seed: int = 0,
) -> WorkingPointTable:
    """The cut, efficiencies and rejections at each WP for several taggers.

    `pseudo_continuous` holds, per tagger, the cuts of every working point as bin edges of
    the discriminant (FTAG's pseudo-continuous tagging: bin 0 fails the loosest WP, the
    last passes the tightest) and the fraction of each class's jets in each bin.
    With a reference tagger, every tagger's background rejections are also divided by the
    reference's, at each working point and on the ROC grid (roc_efficiencies), with the
    paired-bootstrap interval of the ratio (paired.py): `paired` in the JSON, which the ROC
    figure's ratio panels draw, and two columns of the markdown table.
    """
    rows = []
    n_jets = {}
    bins = {}
    taggers = []
    for path in predictions:
        jets = read_tagged_jets(Path(path), discriminant)
        if jets.tagger in n_jets:  # rows are told apart by tagger name only
            raise ValueError(f"{path}: tagger '{jets.tagger}' appears in two predictions files")
        taggers.append(jets)
        n_jets[jets.tagger] = {name: int(jets.mask(name).sum()) for name in jets.classes}
        cuts = [(float(wp), cut_at_efficiency(jets, wp)) for wp in working_points]
        for wp, cut in cuts:
            entry = performance_at_cut(jets, cut)
            rows.append({"tagger": jets.tagger, "working_point": wp, **entry})
        bins[jets.tagger] = pseudo_continuous_bins(jets, dict(cuts))
    result = {
        "discriminant": discriminant.to_dict(),
        "working_points": [float(wp) for wp in working_points],
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "interval_cl": INTERVAL_CL,
        "few_passing": FEW_PASSING,
        "n_jets": n_jets,
        "rows": rows,
        "pseudo_continuous": bins,
        "predictions": [str(p) for p in predictions],
    }
    if reference is not None:
        check_same_jets(taggers, [str(p) for p in predictions])
        grid = [float(wp) for wp in working_points] + [float(e) for e in roc_efficiencies]
        ratios = paired_ratios(taggers, reference, grid, replicas, seed)
        n_wp = len(working_points)
        result["paired"] = {
            "reference": reference,
            "replicas": replicas,
            "seed": seed,
            "interval_cl": INTERVAL_CL,
            "working_points": {t: {k: v[:n_wp] for k, v in r.items()} for t, r in ratios.items()},
            "roc": {
                "signal_efficiency": grid[n_wp:],
                **{t: {k: v[n_wp:] for k, v in r.items()} for t, r in ratios.items()},
            },
        }
    return WorkingPointTable.from_dict(json_safe(result))


def pseudo_continuous_bins(jets: TaggedJets, cuts: dict[float, float]) -> dict:
    """Bins of the discriminant between the working points' cuts, and each class's share.

    cuts: working point -> its cut. Edges: the cuts from the loosest working point to the
    tightest; bin k holds the jets with edges[k-1] < D <= edges[k] (bin 0: failing the
    loosest, the last: passing the tightest). Labels name each bin by the signal
    efficiencies it lies between, in percent.
    """
    ordered = sorted(cuts, reverse=True)  # loosest first
    edges = [cuts[wp] for wp in ordered]
    index = np.searchsorted(np.asarray(edges), jets.discriminant, side="left")
    percents = [100, *(round(100 * wp) for wp in ordered), 0]
    out: dict = {
        "working_points": ordered,
        "edges": edges,
        "labels": [f"{percents[k]}-{percents[k + 1]} %" for k in range(len(edges) + 1)],
    }
    for name in jets.classes:
        sel = jets.mask(name)
        total = float(jets.weights[sel].sum())
        counts = np.bincount(index[sel], weights=jets.weights[sel], minlength=len(edges) + 1)
        out[f"{name}_fraction"] = (counts / total if total > 0 else counts * np.nan).tolist()
    return out


def working_point_markdown(table: dict) -> str:
    """The working-point table as markdown: one row per tagger and working point."""
    cl = table.get("rejection_limit_cl", REJECTION_LIMIT_CL)
    interval_cl = table.get("interval_cl", INTERVAL_CL)
    paired = table.get("paired")
    definition = Discriminant.from_dict(table["discriminant"])
    signal, backgrounds = definition.signal, definition.backgrounds
    lines = [
        f"# {signal}-tagging working points",
        "",
        f"{definition.formula()}; the cut keeps the WP fraction of all {signal} jets."
        " Efficiencies and rejections are quoted with "
        f"their central Clopper-Pearson interval at {_percent(interval_cl)} % CL, [low, "
        "high], with N_eff = (sum w)^2 / sum w^2 jets. Where no background jet passes, the "
        f"rejection is a one-sided lower limit at {_percent(cl)} % CL ('>'); where fewer "
        f"than {table.get('few_passing', FEW_PASSING)} pass it is marked †.",
    ]
    header = f"| Tagger | WP | {definition.name} cut | {signal}-jet efficiency |" + "".join(
        f" {bkg}-jet efficiency | {bkg} rejection |" for bkg in backgrounds
    )
    rule = "|---|---:|---:|---:|" + "---:|---:|" * len(backgrounds)
    if paired:
        lines += [
            "",
            f"Ratios to {paired['reference']}: the taggers are tested on the same jets, so the "
            f"interval is a paired bootstrap over them ({paired['replicas']} replicas), "
            "not the two rejections' errors combined.",
        ]
        header += "".join(f" {bkg} rej. / {paired['reference']} |"
                          for bkg in definition.display_order)  # fmt: skip
        rule += "---:|" * len(backgrounds)
    lines += ["", header, rule]
    for row in table["rows"]:
        cells = [
            row["tagger"],
            f"{wp_name(row['working_point'])} %",
            _number(row["cut"], 3),
            _with_interval(row[f"{signal}_efficiency"], row[f"{signal}_efficiency_interval"]),
        ]
        for bkg in backgrounds:
            cells += [
                _with_interval(row[f"{bkg}_efficiency"], row[f"{bkg}_efficiency_interval"]),
                _rejection_cell(row, bkg, cl),
            ]
        if paired:
            ratios = paired["working_points"][row["tagger"]]
            k = table["working_points"].index(row["working_point"])
            cells += [
                _with_interval(ratios[f"{bkg}_ratio"][k], ratios[f"{bkg}_ratio_interval"][k])
                for bkg in definition.display_order
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _pseudo_continuous_markdown(table.get("pseudo_continuous", {}), definition)
    return "\n".join(lines) + "\n"


def _pseudo_continuous_markdown(bins: dict, definition: Discriminant) -> list[str]:
    """Each tagger's pseudo-continuous bins: edges and every class's share, in percent."""
    if not bins:
        return []
    lines = [
        "",
        f"## Pseudo-continuous bins of {definition.name}",
        "",
        "Share of each class's jets in the bins between the working points' cuts (bin labels:"
        f" the {definition.signal}-jet efficiencies the bin lies between).",
    ]
    for tagger, entry in bins.items():
        lines += ["", f"{tagger}: cuts {', '.join(_number(c, 3) for c in entry['edges'])}", "",
                  "| Class | " + " | ".join(entry["labels"]) + " |",
                  "|---|" + "---:|" * len(entry["labels"])]  # fmt: skip
        for name in definition.classes:
            shares = entry[f"{name}_fraction"]
            lines.append(f"| {name} | " + " | ".join(_number(100 * x, 1) for x in shares) + " |")
    return lines


def efficiency_vs_pt(
    prediction: Path,
    discriminant: Discriminant,
    working_point: float,
    pt_bins_gev: Sequence[float],
) -> EfficiencyVsPt:
    """Efficiencies and rejections in jet-pT bins at one WP, with the inclusive and flat cuts."""
    edges = np.asarray(pt_bins_gev, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"pt_bins_gev must be increasing edges, got {list(pt_bins_gev)}")
    jets = read_tagged_jets(Path(prediction), discriminant)
    # bin k holds edges[k] <= pt < edges[k + 1]; jets outside the edges are in no bin
    bin_of_jet = np.searchsorted(edges, jets.pt_gev, side="right") - 1
    # the inclusive cut is the one of the working-point table: defined once on all signal jets
    cut_all = cut_at_efficiency(jets, working_point)
    strategies: dict[str, list[dict]] = {"inclusive": [], "flat_per_bin": []}
    n_jets: dict[str, list[int]] = {name: [] for name in jets.classes}
    for k in range(len(edges) - 1):
        in_bin = bin_of_jet == k
        for name in jets.classes:
            n_jets[name].append(int((in_bin & jets.mask(name)).sum()))
        strategies["inclusive"].append(performance_at_cut(jets, cut_all, in_bin))
        if (in_bin & jets.mask(jets.signal)).any():
            cut_bin = cut_at_efficiency(jets, working_point, in_bin)
        else:
            cut_bin = float("nan")  # no signal jets: no cut can be defined in this bin
        strategies["flat_per_bin"].append(performance_at_cut(jets, cut_bin, in_bin))
    result = {
        "tagger": jets.tagger,
        "discriminant": discriminant.to_dict(),
        "working_point": float(working_point),
        "inclusive_cut": cut_all,
        "rejection_limit_cl": REJECTION_LIMIT_CL,
        "pt_bins_gev": edges.tolist(),
        "n_jets": n_jets,
        # per strategy, a column (one value per pT bin) for each quantity
        "strategies": {name: _columns(entries) for name, entries in strategies.items()},
        "predictions": str(prediction),
    }
    return EfficiencyVsPt.from_dict(json_safe(result))


def score_histograms(
    prediction: Path,
    discriminant: Discriminant,
    working_points: Sequence[float],
    n_bins: int = 60,
) -> ScoreHistograms:
    """Discriminant histograms per class, normalised to unit area, with the inclusive WP cuts."""
    jets = read_tagged_jets(Path(prediction), discriminant)
    labelled = np.isin(jets.flavour, [jets.index[name] for name in jets.classes])
    finite = jets.discriminant[labelled]
    # a few extreme jets (probabilities at the floor) would stretch the axis; fold them in
    low, high = np.percentile(finite, [0.05, 99.95]) if finite.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, n_bins + 1)
    widths = np.diff(edges)
    histograms = {}
    for name in jets.classes:
        sel = jets.mask(name)
        clipped = np.clip(jets.discriminant[sel], edges[0], edges[-1])
        counts, _ = np.histogram(clipped, bins=edges, weights=jets.weights[sel])
        sum_w2, _ = np.histogram(clipped, bins=edges, weights=jets.weights[sel] ** 2)
        total = float(np.sum(jets.weights[sel]))
        norm = total * widths if total > 0 else np.full_like(widths, np.nan)
        histograms[name] = {
            "density": (counts / norm).tolist(),
            "density_error": (np.sqrt(sum_w2) / norm).tolist(),
            "n_jets": int(sel.sum()),
        }
    cuts = [
        {"working_point": float(wp), "cut": cut_at_efficiency(jets, wp)} for wp in working_points
    ]
    result = {
        "tagger": jets.tagger,
        "discriminant": discriminant.to_dict(),
        "edges": edges.tolist(),
        "overflow": "folded into the first and last bins",
        "histograms": histograms,
        "working_points": cuts,
        "predictions": str(prediction),
    }
    return ScoreHistograms.from_dict(json_safe(result))


def _columns(entries: list[dict]) -> dict[str, list]:
    """List of per-bin dicts -> dict of per-bin lists."""
    return {key: [entry[key] for entry in entries] for key in entries[0]} if entries else {}


def _number(value: float | None, digits: int) -> str:
    """A value with fixed decimals; a dash where there is none."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _percent(cl: float) -> str:
    """0.95 -> '95' (a confidence level in percent)."""
    return f"{100 * cl:g}"


def _rejection_cell(row: dict, background: str, cl: float) -> str:
    """'value [low, high]' (marked † for few passing jets), or '> limit (95 % CL)'."""
    value = row[f"{background}_rejection"]
    if row.get(f"{background}_rejection_is_lower_limit") and value is not None:
        digits = max(0, 2 - math.floor(math.log10(value))) if value > 0 else 0
        return f"> {value:.{digits}f} ({_percent(cl)} % CL)"
    cell = _with_interval(value, row[f"{background}_rejection_interval"])
    return cell + (" †" if row.get(f"{background}_rejection_few_passing") else "")


def _with_interval(value: float | None, interval: Sequence[float | None] | None) -> str:
    """'value [low, high]' with the interval's half-width to two significant digits."""
    if value is None or not math.isfinite(value):
        return "–"
    low, high = interval if interval is not None else (None, None)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.4g}" + (f" [{low:.4g}, ∞]" if low is not None else "")
    half = 0.5 * (high - low)
    if half <= 0:
        return f"{value:.4g} [{low:.4g}, {high:.4g}]"
    decimals = max(0, 1 - math.floor(math.log10(half)))
    return f"{value:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"
