"""Discriminants as configuration: a signal class and background fractions.

D = log(p_signal / sum_k f_k p_k) over the backgrounds k (the fractions add up to 1): ATLAS's
D_b = log(p_b / (f_c p_c + (1 - f_c) p_light)), D_c with f_b, an Xbb discriminant with its
top and QCD fractions, or one class against one other (JetClass's X vs QCD). One formula,
`Discriminant.scores`, serves numpy arrays (metrics, working points, ROCs) and torch tensors
(saliency, where gradients flow through it). A background with fraction 0 does not enter D
but is still a background whose rejection is reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jettag.errors import ConfigError
from jettag.flavours import fraction_problem

PROBABILITY_FLOOR = 1e-10  # probabilities below this are taken as this (a finite D)


@dataclasses.dataclass(frozen=True)
class Discriminant:
    """A signal class and its backgrounds' fractions, in class order."""

    signal: str
    fractions: tuple[tuple[str, float], ...]  # (background, f) in the classes' order

    @property
    def backgrounds(self) -> tuple[str, ...]:
        """The background classes, in class order."""
        return tuple(name for name, _ in self.fractions)

    @property
    def classes(self) -> tuple[str, ...]:
        """Signal first, then the backgrounds: the classes the discriminant is built from."""
        return (self.signal, *self.backgrounds)

    @property
    def display_order(self) -> tuple[str, ...]:
        """Backgrounds as figures list them: the weighted ones from the last (light, then c
        for D_b), then those of fraction 0 (tau)."""
        weighted = [name for name, f in self.fractions if f > 0]
        return (*weighted[::-1], *(name for name, f in self.fractions if f == 0))

    @property
    def name(self) -> str:
        """'D_b', 'D_Hbb': the discriminant's name in text and JSON."""
        return f"D_{self.signal}"

    @property
    def axis_label(self) -> str:
        """The discriminant as an axis label, e.g. '$D_{b}$'."""
        return f"$D_{{{self.signal}}}$"

    def scores(self, probabilities: Mapping[str, Any]) -> Any:
        """D of each jet from class name -> (n,) probabilities (numpy arrays or torch tensors).

        Probabilities below PROBABILITY_FLOOR (numerator and the fraction-weighted sum) count
        as the floor, so D stays finite.
        """
        numerator = probabilities[self.signal]
        denominator = sum(f * probabilities[name] for name, f in self.fractions)
        if isinstance(numerator, np.ndarray):
            numerator = np.maximum(numerator, PROBABILITY_FLOOR)
            denominator = np.maximum(denominator, PROBABILITY_FLOOR)
            return np.log(numerator / denominator)
        return (
            numerator.clamp_min(PROBABILITY_FLOOR) / denominator.clamp_min(PROBABILITY_FLOOR)
        ).log()

    def formula(self) -> str:
        """The definition in text: 'D_b = log(p_b / (0.018 p_c + 0.982 p_light))'."""
        terms = " + ".join(f"{f:g} p_{name}" for name, f in self.fractions if f > 0)
        return f"{self.name} = log(p_{self.signal} / ({terms}))"

    def fraction_label(self) -> str:
        """Plot text of the fractions: the last weighted background (the rest) and zeros left out.

        '$f_{c}$ = 0.018' for D_b; '' for one background (a class against one other).
        """
        weighted = [(name, f) for name, f in self.fractions if f > 0]
        return ", ".join(f"$f_{{{name}}}$ = {f:g}" for name, f in weighted[:-1])

    def to_dict(self) -> dict[str, Any]:
        """The config and JSON form: {signal, fractions}."""
        return {"signal": self.signal, "fractions": dict(self.fractions)}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], classes: Sequence[str] | None = None
    ) -> Discriminant:
        """From {signal, fractions}; backgrounds ordered as `classes` (as given otherwise).

        A signal or background outside `classes`, or fractions that do not add up to 1, is a
        ConfigError naming them.
        """
        signal = str(data["signal"])
        fractions = {str(k): float(v) for k, v in dict(data["fractions"]).items()}
        problem = fraction_problem(signal, fractions)
        if problem:
            raise ConfigError(f"discriminant D_{signal}: {problem}")
        if classes is not None:
            unknown = [n for n in (signal, *fractions) if n not in classes]
            if unknown:
                raise ConfigError(
                    f"discriminant D_{signal}: {unknown} not among the classes {list(classes)}"
                )
            order = {name: k for k, name in enumerate(classes)}
            fractions = dict(sorted(fractions.items(), key=lambda item: order[item[0]]))
        return cls(signal, tuple(fractions.items()))

    def with_fraction(self, background: str, fraction: float) -> Discriminant:
        """The same discriminant with one background's fraction set and the others scaled.

        The others keep their ratios and share 1 - fraction (an f_c scan: D_b with f_c
        varied, light taking the rest); with no other weight they share it equally.
        """
        if background not in self.backgrounds:
            raise ValueError(f"{background} is not a background of {self.name}")
        others = [(n, f) for n, f in self.fractions if n != background]
        rest = sum(f for _, f in others)
        scaled = {
            n: (1.0 - fraction) * (f / rest if rest > 0 else 1.0 / len(others)) for n, f in others
        }
        scaled[background] = fraction
        return Discriminant(self.signal, tuple((n, scaled[n]) for n in self.backgrounds))


def require_b_tagging(discriminant: Discriminant, what: str) -> None:
    """Studies that report light and c rejection need D_b's backgrounds: c and light.

    A ConfigError naming the study otherwise (their tables and plots are b-tagging ones).
    """
    if set(discriminant.backgrounds) != {"c", "light"}:
        raise ConfigError(
            f"{what} reports light and c rejection, but evaluation.discriminant is"
            f" {discriminant.formula()}: run it with D_b (class_set ftag)"
        )
