"""Truth labels as ATLAS defines them: jet flavours and track origins, one registry each.

Every module that needs a flavour's label ID, its probability column, its colour or the
order in which flavours are listed takes it from here (evaluation, plotting, simulation,
the default config in the schema: tests/test_flavours.py checks that they agree).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Flavour:
    """One jet flavour: its class name, truth label IDs, puma column suffix and plot style."""

    name: str  # class name in configs and files ("b", "c", "light", "tau")
    label_id: int  # HadronConeExclTruthLabelID
    probability_suffix: str  # puma's column name: <tagger>_pb, _pc, _pu, _ptau
    colour: str
    legend: str  # legend text of jets of this flavour


# Listed in the order every table, JSON file and legend uses: the signal first.
FLAVOURS: dict[str, Flavour] = {
    f.name: f
    for f in (
        Flavour("b", 5, "pb", "#1f77b4", "$b$-jets"),
        Flavour("c", 4, "pc", "#2ca02c", "$c$-jets"),
        Flavour("light", 0, "pu", "#d62728", "Light-jets"),
        Flavour("tau", 15, "ptau", "#9467bd", "$\\tau$-jets"),
    )
}
SIGNAL = "b"
BACKGROUNDS = ("c", "light")  # of b tagging, in FLAVOURS order
TAGGING_FLAVOURS = (SIGNAL, *BACKGROUNDS)  # the classes D_b is built from


def label_ids() -> dict[str, tuple[int, ...]]:
    """Flavour name -> the HadronConeExclTruthLabelID values that make it (ATLAS's mapping)."""
    return {name: (f.label_id,) for name, f in FLAVOURS.items()}


def probability_column(tagger: str, flavour: str) -> str:
    """The predictions column of a tagger's probability of a flavour, e.g. 'dips_pu'."""
    known = FLAVOURS.get(flavour)
    return f"{tagger}_{known.probability_suffix if known else 'p' + flavour}"


def style(flavour: str, fallback_colour: str) -> tuple[str, str]:
    """(colour, legend text) of a class; an unknown class gets the fallback and its name."""
    known = FLAVOURS.get(flavour)
    return (known.colour, known.legend) if known else (fallback_colour, flavour)


# Truth origin of a track, as ATLAS's ftagTruthOriginLabel (-1: unknown or padding).
TRACK_ORIGINS: dict[int, str] = {
    0: "pile-up",
    1: "fake",
    2: "primary",
    3: "from B",
    4: "from B->C",
    5: "from C",
    6: "from tau",
    7: "other secondary",
}
