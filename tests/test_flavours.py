"""One flavour registry: label IDs, class order, probability columns and colours agree."""

from __future__ import annotations

from jettag import config as cfg
from jettag.config.schema import schema
from jettag.flavours import (
    BACKGROUNDS,
    FLAVOURS,
    SIGNAL,
    TAGGING_FLAVOURS,
    TRACK_ORIGINS,
    label_ids,
    probability_column,
)
from jettag.io.fields import SOURCE_KEYS
from jettag.plotting.style import FLAVOUR_STYLE
from jettag.simulate import pdg
from tests.conftest import minimal_config


def test_atlas_label_ids_and_the_schema_defaults_agree():
    assert label_ids() == {"b": (5,), "c": (4,), "light": (0,), "tau": (15,)}
    config = cfg.validate_config(minimal_config())
    classes = {c["name"]: tuple(c["truth_labels"]) for c in config["prepare"]["classes"]}
    assert list(classes) == list(TAGGING_FLAVOURS)  # the class order of every file: b, c, light
    assert all(classes[name] == label_ids()[name] for name in classes)
    values = config["samples"]["ttbar"]["labels"]["values"]
    assert {k: tuple(v) for k, v in values.items()} == label_ids()
    assert cfg.LabelsConfig().values == label_ids()
    assert (pdg.LABEL_B, pdg.LABEL_C, pdg.LABEL_LIGHT, pdg.LABEL_TAU) == (5, 4, 0, 15)


def test_signal_backgrounds_and_order():
    assert SIGNAL == "b" and BACKGROUNDS == ("c", "light")
    assert list(FLAVOURS)[:3] == list(TAGGING_FLAVOURS)
    assert list(FLAVOUR_STYLE) == list(TAGGING_FLAVOURS)
    assert FLAVOUR_STYLE["b"] == (FLAVOURS["b"].colour, "$b$-jets")


def test_puma_probability_columns():
    assert [probability_column("dips", f) for f in FLAVOURS] == [
        "dips_pb", "dips_pc", "dips_pu", "dips_ptau",
    ]  # fmt: skip
    assert probability_column("dips", "gluon") == "dips_pgluon"


def test_track_origins_are_ftag_truth_origin_labels():
    assert TRACK_ORIGINS[pdg.ORIGIN_FROM_B] == "from B" and len(TRACK_ORIGINS) == 8
    assert [TRACK_ORIGINS[k] for k in (pdg.ORIGIN_PILEUP, pdg.ORIGIN_FAKE)] == ["pile-up", "fake"]


def test_schema_knows_every_source_key():
    branches = schema()["$defs"]["sample"]["properties"]["branches"]
    assert branches["propertyNames"]["enum"] == list(SOURCE_KEYS)
