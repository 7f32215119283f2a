"""The evaluation core: a tagger's discriminant on labelled jets, its performance at a cut, ROCs.

Every efficiency and rejection jettag reports (metrics, the working-point table, the pT
dependence, permutation importance, ablation, transfer learning, ensemble spreads) comes from
`performance_at_cut` on a TaggedJets; a ROC curve is that function on a grid of b
efficiencies, kept as a Roc object that writes and reads its JSON and refuses a ratio
between curves on different grids.

Jets are unweighted (ATLAS quotes performance on the natural spectrum); binomial errors go
through N_eff = (sum w)^2 / sum w^2 so that weights can be added. Where no background jet
passes a cut, `<bkg>_rejection` is the one-sided Clopper-Pearson lower limit (metrics.py),
flagged by `<bkg>_rejection_is_lower_limit`, unless limits are switched off (ROC grids keep
the infinite rejection, null in JSON).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jettag.errors import InputError
from jettag.evaluation.discriminant import Discriminant
from jettag.evaluation.metrics import (
    FEW_PASSING,
    cut_for_efficiency,
    effective_entries,
    efficiency,
    efficiency_interval,
    rejection,
    rejection_interval,
    rejection_with_limit,
)
from jettag.io.predictions import Predictions, read_predictions

REJECTION_SUFFIXES = ("", "_error", "_interval", "_lower_limit", "_is_lower_limit", "_few_passing")


@dataclasses.dataclass(frozen=True)
class TaggedJets:
    """One tagger's discriminant, class and pT for every jet of a sample."""

    tagger: str
    discriminant: np.ndarray  # (n_jets,) D of the definition below
    flavour: np.ndarray  # (n_jets,) class index into the file's classes
    pt_gev: np.ndarray  # (n_jets,)
    weights: np.ndarray  # (n_jets,) unit weights
    index: dict[str, int]  # class name -> class index
    definition: Discriminant  # the signal and its backgrounds' fractions

    @property
    def signal(self) -> str:
        """The signal class (b for D_b)."""
        return self.definition.signal

    @property
    def backgrounds(self) -> tuple[str, ...]:
        """The background classes whose rejections are reported."""
        return self.definition.backgrounds

    @property
    def classes(self) -> tuple[str, ...]:
        """Signal, then backgrounds."""
        return self.definition.classes

    def mask(self, flavour: str) -> np.ndarray:
        """(n_jets,) bool, True for jets of this class."""
        return self.flavour == self.index[flavour]


def tagged_jets(
    tagger: str,
    probabilities: Mapping[str, np.ndarray],
    classes: Sequence[str],
    flavour: np.ndarray,
    pt_gev: np.ndarray,
    discriminant: Discriminant,
) -> TaggedJets:
    """The discriminant, class and pT of every jet from its class probabilities.

    classes: the class names in label order; a class the discriminant needs that is not
    among them is an InputError naming both.
    """
    missing = [name for name in discriminant.classes if name not in classes]
    if missing:
        raise InputError(
            f"tagger {tagger}: {discriminant.name} needs {missing}, not among its classes"
            f" {list(classes)}"
        )
    prob = {name: np.asarray(probabilities[name], dtype=np.float64)
            for name in discriminant.classes}  # fmt: skip
    return TaggedJets(
        tagger=tagger,
        discriminant=discriminant.scores(prob),
        flavour=np.asarray(flavour),
        pt_gev=np.asarray(pt_gev, dtype=np.float64),
        weights=np.ones(len(flavour)),
        index={name: k for k, name in enumerate(classes)},
        definition=discriminant,
    )


def predictions_jets(
    predictions: Predictions, discriminant: Discriminant, member: int | None = None
) -> TaggedJets:
    """TaggedJets of a predictions file: the ensemble average, or one member's outputs."""
    if member is None:
        prob = {name: predictions.probability(name) for name in discriminant.classes
                if name in predictions.classes}  # fmt: skip
    else:
        prob = predictions.member_probabilities(member)
    jets = predictions.jets
    return tagged_jets(predictions.tagger, prob, predictions.classes, jets["flavour_label"],
                       jets["pt"], discriminant)  # fmt: skip


def read_tagged_jets(path: Path, discriminant: Discriminant) -> TaggedJets:
    """Read a predictions file and compute the discriminant."""
    return predictions_jets(read_predictions(Path(path)), discriminant)


def wp_name(working_point: float) -> str:
    """0.77 -> '77' (the percent label of a working point)."""
    return f"{round(working_point * 100):d}"


def cut_at_efficiency(
    jets: TaggedJets, working_point: float, selection: np.ndarray | None = None
) -> float:
    """The discriminant cut keeping the fraction working_point of the (selected) signal jets."""
    is_b = jets.mask(jets.signal) if selection is None else jets.mask(jets.signal) & selection
    if not is_b.any():
        raise ValueError(f"tagger {jets.tagger}: no {jets.signal} jets to define a working point")
    return cut_for_efficiency(jets.discriminant[is_b], jets.weights[is_b], working_point)


def performance_at_cut(
    jets: TaggedJets, cut: float, selection: np.ndarray | None = None, limits: bool = True
) -> dict:
    """Efficiency (error, interval, N_eff) of each class, rejection of each background at a cut.

    Intervals are central Clopper-Pearson ones (metrics.INTERVAL_CL); `<bkg>_passing` is the
    number of background jets that pass (N_eff-scaled), `<bkg>_rejection_few_passing` flags
    fewer than metrics.FEW_PASSING. selection: (n_jets,) bool, the jets counted (all by
    default). limits: where no background jet passes, quote the rejection's lower limit
    (flagged), else the infinite rejection.
    """
    entry: dict = {"cut": cut}
    for name in jets.classes:
        sel = jets.mask(name) if selection is None else jets.mask(name) & selection
        if math.isfinite(cut):
            eff, err = efficiency(jets.discriminant[sel] > cut, jets.weights[sel])
        else:  # no cut could be defined (no signal jets): no efficiency either, not zero
            eff, err = float("nan"), float("nan")
        n_eff = effective_entries(jets.weights[sel])
        interval = efficiency_interval(eff * n_eff, n_eff)
        entry[f"{name}_efficiency"] = eff
        entry[f"{name}_efficiency_error"] = err
        entry[f"{name}_efficiency_interval"] = list(interval)
        entry[f"{name}_n_eff"] = n_eff
        if name == jets.signal:
            continue
        if limits:
            entry.update(rejection_with_limit(name, eff, err, n_eff))
        else:
            entry[f"{name}_rejection"], entry[f"{name}_rejection_error"] = rejection(eff, err)
        entry[f"{name}_rejection_interval"] = list(rejection_interval(*interval))
        entry[f"{name}_passing"] = eff * n_eff
        entry[f"{name}_rejection_few_passing"] = bool(eff * n_eff < FEW_PASSING)
    return entry


def performance_at_working_point(jets: TaggedJets, working_point: float) -> dict:
    """performance_at_cut over all jets, at the cut keeping working_point of all signal jets."""
    return performance_at_cut(jets, cut_at_efficiency(jets, working_point))


def rejections(entry: dict, backgrounds: Sequence[str]) -> dict:
    """The backgrounds' rejection keys of a performance_at_cut entry (errors, lower limits)."""
    return {f"{bkg}_rejection{s}": entry[f"{bkg}_rejection{s}"] for bkg in backgrounds
            for s in REJECTION_SUFFIXES}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Roc:
    """Background rejections (and binomial errors) at each signal efficiency of a grid.

    signal_efficiency, cuts: (points,); rejection, rejection_error: background -> (points,),
    infinite (null in JSON) where no background jet passes; rejection_interval: background ->
    (points, 2) central Clopper-Pearson interval (metrics.INTERVAL_CL); passing: background ->
    (points,) background jets passing (N_eff-scaled); n_eff: background -> N_eff.
    """

    signal_efficiency: np.ndarray
    cuts: np.ndarray
    rejection: dict[str, np.ndarray]
    rejection_error: dict[str, np.ndarray]
    rejection_interval: dict[str, np.ndarray]
    passing: dict[str, np.ndarray]
    n_eff: dict[str, float]

    def to_dict(self) -> dict:
        """The JSON form (metrics files' `roc`)."""
        out: dict = {
            "signal_efficiency": self.signal_efficiency.tolist(),
            "cut": self.cuts.tolist(),
        }
        for name in self.rejection:
            out[f"{name}_rejection"] = self.rejection[name].tolist()
            out[f"{name}_rejection_error"] = self.rejection_error[name].tolist()
            out[f"{name}_rejection_interval"] = self.rejection_interval[name].tolist()
            out[f"{name}_passing"] = self.passing[name].tolist()
            out[f"{name}_n_eff"] = self.n_eff[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Roc:
        """Inverse of to_dict (null -> inf for rejections and interval ends, NaN for errors)."""
        names = [k.removesuffix("_n_eff") for k in data if k.endswith("_n_eff")]

        def array(values: list, missing: float) -> np.ndarray:
            return np.array(
                [[missing if x is None else x for x in v] if isinstance(v, list) else
                 (missing if v is None else v) for v in values], dtype=float,
            )  # fmt: skip

        return cls(
            signal_efficiency=array(data["signal_efficiency"], np.nan),
            cuts=array(data["cut"], np.nan),
            rejection={n: array(data[f"{n}_rejection"], np.inf) for n in names},
            rejection_error={n: array(data[f"{n}_rejection_error"], np.nan) for n in names},
            rejection_interval={
                n: array(data[f"{n}_rejection_interval"], np.inf).reshape(-1, 2) for n in names
            },
            passing={n: array(data[f"{n}_passing"], np.nan) for n in names},
            n_eff={n: float(data[f"{n}_n_eff"]) for n in names},
        )

    def ratio(self, reference: Roc, background: str) -> tuple[np.ndarray, np.ndarray]:
        """(rejection / reference rejection, its error from this curve's error alone).

        NaN where either rejection is infinite (no background jet passes). Curves on
        different b-efficiency grids cannot be divided point by point: a ValueError, not an
        interpolation.
        """
        if not np.array_equal(self.signal_efficiency, reference.signal_efficiency):
            raise ValueError(
                "ROC ratio of curves on different b-efficiency grids"
                f" ({_grid_text(self)} vs {_grid_text(reference)})"
            )
        rej, ref = self.rejection[background], reference.rejection[background]
        defined = np.isfinite(rej) & np.isfinite(ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(defined, rej / ref, np.nan)
            error = np.where(defined, self.rejection_error[background] / ref, np.nan)
        return ratio, error


def _grid_text(roc: Roc) -> str:
    """'0.5-1 in 101 points' for an error message."""
    eff = roc.signal_efficiency
    return f"{eff.min():g}-{eff.max():g} in {eff.size} points" if eff.size else "empty"


def roc(jets: TaggedJets, signal_efficiencies: np.ndarray) -> Roc:
    """The ROC of a tagger on a grid of signal efficiencies (rejections without limits)."""
    backgrounds = jets.backgrounds
    cuts = [cut_at_efficiency(jets, float(e)) for e in signal_efficiencies]
    entries = [performance_at_cut(jets, cut, limits=False) for cut in cuts]
    return Roc(
        signal_efficiency=np.asarray(signal_efficiencies, dtype=float),
        cuts=np.asarray(cuts, dtype=float),
        rejection={b: np.array([e[f"{b}_rejection"] for e in entries]) for b in backgrounds},
        rejection_error={
            b: np.array([e[f"{b}_rejection_error"] for e in entries]) for b in backgrounds
        },
        rejection_interval={
            b: np.array([e[f"{b}_rejection_interval"] for e in entries]).reshape(-1, 2)
            for b in backgrounds
        },
        passing={b: np.array([e[f"{b}_passing"] for e in entries]) for b in backgrounds},
        n_eff={b: effective_entries(jets.weights[jets.mask(b)]) for b in backgrounds},
    )
