"""Class sets as data: the built-in YAML sets, a user's own, their checks, and the conventions
they must keep (ATLAS's label values, puma's column names, atlas-ftag-tools' definitions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from jettag import config as cfg
from jettag.config.schema import schema
from jettag.errors import ConfigError, InputError
from jettag.evaluation.discriminant import Discriminant
from jettag.flavours import (
    BUILT_IN_CLASS_SETS,
    FLAVOURS,
    TRACK_ORIGINS,
    load_class_set,
    probability_column,
)
from jettag.io.fields import SOURCE_KEYS
from jettag.plotting.style import class_style
from jettag.simulate import pdg
from tests.conftest import minimal_config

# atlas-ftag-tools' names of the FTAG classes (its flavours.yaml); the Xbb ones are the same
FTAG_TOOLS_NAMES = {"b": "bjets", "c": "cjets", "light": "ujets", "tau": "taujets"}
JETCLASS_ORDER = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]


def test_atlas_label_ids_and_the_default_config_agree():
    ftag = load_class_set("ftag")
    assert ftag.label_variable == "HadronConeExclTruthLabelID"
    assert ftag.label_values() == {"b": (5,), "c": (4,), "light": (0,), "tau": (15,)}
    config = cfg.validate_config(minimal_config())
    classes = {c["name"]: tuple(c["truth_labels"]) for c in config["prepare"]["classes"]}
    assert list(classes) == ["b", "c", "light"]  # the class order of every file
    values = config["samples"]["ttbar"]["labels"]["values"]
    assert {k: tuple(v) for k, v in values.items()} == ftag.label_values()
    assert config["evaluation"]["discriminant"] == {
        "signal": "b", "fractions": {"c": 0.018, "light": 0.982},
    }  # fmt: skip
    assert (pdg.LABEL_B, pdg.LABEL_C, pdg.LABEL_LIGHT, pdg.LABEL_TAU) == (5, 4, 0, 15)
    assert list(FLAVOURS) == ["b", "c", "light", "tau"]


@pytest.mark.parametrize("set_name", ["ftag", "xbb"])
def test_ftag_and_xbb_sets_match_atlas_ftag_tools(set_name):
    ftag_tools = pytest.importorskip("ftag")
    classes = load_class_set(set_name)
    for name, ours in classes.classes.items():
        theirs = ftag_tools.Flavours[FTAG_TOOLS_NAMES.get(name, name)]
        (cut,) = theirs.cuts.cuts
        assert cut.variable == classes.label_variable, name
        text = str(cut).split(maxsplit=2)[2]  # "5" or "(1,6,7)"
        assert tuple(int(v) for v in text.strip("()").split(",")) == ours.label_values, name
        assert theirs.px == ours.probability_suffix, name  # puma's column suffix
        assert theirs.category == ours.category, name
        assert theirs.label == ours.label or set_name == "ftag", name


def test_jetclass_set_is_weavers_ten_one_hot_classes():
    jetclass = load_class_set("jetclass")
    assert list(jetclass.classes) == JETCLASS_ORDER == list(jetclass.train_classes)
    assert [c.one_hot for c in jetclass.classes.values()] == [f"label_{n}" for n in JETCLASS_ORDER]
    assert [c.label_values for c in jetclass.classes.values()] == [(k,) for k in range(10)]
    # ParT's binary tasks: every signal against QCD alone
    assert all(f == {"QCD": 1.0} for f in jetclass.discriminants.values())
    assert cfg.preset("jetclass")["labels"]["one_hot"] == {n: f"label_{n}" for n in JETCLASS_ORDER}


def test_puma_probability_columns():
    assert [probability_column("dips", f) for f in FLAVOURS] == [
        "dips_pb", "dips_pc", "dips_pu", "dips_ptau",
    ]  # fmt: skip
    assert probability_column("gn2x", "hbb") == "gn2x_phbb"
    assert probability_column("part", "QCD") == "part_pQCD"
    assert probability_column("dips", "gluon") == "dips_pgluon"


def test_plot_styles_come_from_the_class_sets():
    assert class_style("b") == (FLAVOURS["b"].colour, "$b$-jets")
    assert class_style("hbb")[1] == "$H \\rightarrow b\\bar{b}$"
    colour, text = class_style("my_class", 3)
    assert text == "my_class" and colour.startswith("#")


def _user_set(tmp_path, **changes) -> str:
    """A user's class set file: two classes of a PartonTruthLabelID, with changes."""
    raw = {
        "label_variable": "PartonTruthLabelID",
        "classes": [
            {"name": "gluon", "label_values": [21], "colour": "#ff7f0e", "label": "gluon jets"},
            {"name": "quark", "label_values": [1, 2, 3], "colour": "#1f77b4"},
        ],
        "discriminants": {"gluon": {"quark": 1.0}},
        **changes,
    }
    path = tmp_path / "quark_gluon.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_users_class_set_drives_the_config(tmp_path):
    path = _user_set(tmp_path)
    config = cfg.validate_config(minimal_config(class_set=path))
    assert config["prepare"]["classes"] == [
        {"name": "gluon", "truth_labels": [21]}, {"name": "quark", "truth_labels": [1, 2, 3]},
    ]  # fmt: skip
    assert config["samples"]["ttbar"]["labels"]["values"] == {"gluon": [21], "quark": [1, 2, 3]}
    assert config["prepare"]["reweight"]["target"] == "gluon"
    assert config["evaluation"]["discriminant"] == {"signal": "gluon", "fractions": {"quark": 1.0}}
    reading = cfg.reading_config(config, "ttbar")
    assert reading.label_variable == "PartonTruthLabelID"
    assert reading.canonical_labels == {"gluon": 21, "quark": 1}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label_variable": "not a name"}, "label_variable must be a field name"),
        ({"classes": [{"name": "a", "label_values": [1]}]}, "at least two classes"),
        (
            {"classes": [{"name": "a", "label_values": [1]}, {"name": "b", "label_values": [1]}]},
            "PartonTruthLabelID = 1 makes both 'a' and 'b'",
        ),
        ({"discriminants": {"gluon": {"quark": 0.5}}}, "add up to 0.5, not 1"),
        ({"discriminants": {"gluon": {"top": 1.0}}}, r"discriminants.gluon: \['top'\] not among"),
        ({"train_classes": ["gluon", "glue"]}, r"train_classes: \['glue'\]"),
        ({"colours": {}}, r"unknown keys \['colours'\]"),
    ],
)
def test_a_broken_class_set_names_the_file_and_key(tmp_path, changes, message):
    path = _user_set(tmp_path, **changes)
    load_class_set.cache_clear()
    with pytest.raises(InputError, match=message) as error:
        load_class_set(path)
    assert path in str(error.value)


def test_class_names_outside_the_set_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="'hbb' is not a class of class_set 'ftag'"):
        cfg.validate_config(minimal_config(prepare={"classes": ["b", "hbb"]}))
    with pytest.raises(ConfigError, match=r"evaluation.discriminant: \['tau'\] not among the"):
        cfg.validate_config(minimal_config(
            evaluation={"discriminant": {"signal": "b", "fractions": {"tau": 1.0}}}
        ))  # fmt: skip
    with pytest.raises(ConfigError, match=r"add up to 0\.9, not 1"):
        cfg.validate_config(minimal_config(
            evaluation={"discriminant": {"signal": "b", "fractions": {"c": 0.1, "light": 0.8}}}
        ))  # fmt: skip
    with pytest.raises(ConfigError, match="neither a built-in class set"):
        cfg.validate_config(minimal_config(class_set="flavours_of_mine"))
    assert set(BUILT_IN_CLASS_SETS) == {"ftag", "xbb", "jetclass"}


def test_default_discriminant_follows_the_trained_classes():
    # D_c needs only its signal: the fractions come from the class set
    config = cfg.validate_config(minimal_config(evaluation={"discriminant": {"signal": "c"}}))
    assert config["evaluation"]["discriminant"]["fractions"] == {"b": 0.3, "light": 0.7}
    # b against light alone: the class set's D_b rescaled to the trained backgrounds
    config = cfg.validate_config(minimal_config(prepare={"classes": ["b", "light"]}))
    assert config["evaluation"]["discriminant"] == {"signal": "b", "fractions": {"light": 1.0}}
    # four classes: tau is trained, a background of fraction 0 (reported, not in D_b)
    four = cfg.validate_config(minimal_config(prepare={"classes": ["b", "c", "light", "tau"]}))
    assert four["evaluation"]["discriminant"]["fractions"] == {
        "c": 0.018, "light": 0.982, "tau": 0.0,
    }  # fmt: skip


def test_one_discriminant_for_numpy_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    prob = rng.dirichlet(np.ones(4), size=200)
    names = ["b", "c", "light", "tau"]
    definition = Discriminant.from_dict(
        {"signal": "b", "fractions": {"tau": 0.1, "light": 0.8, "c": 0.1}}, names
    )
    assert definition.backgrounds == ("c", "light", "tau")  # class order, not the config's
    by_hand = np.log(prob[:, 0] / (0.1 * prob[:, 1] + 0.8 * prob[:, 2] + 0.1 * prob[:, 3]))
    numpy_scores = definition.scores({n: prob[:, k] for k, n in enumerate(names)})
    tensor = torch.tensor(prob, dtype=torch.float64)
    torch_scores = definition.scores({n: tensor[:, k] for k, n in enumerate(names)})
    np.testing.assert_allclose(numpy_scores, by_hand, rtol=1e-12)
    np.testing.assert_allclose(torch_scores.numpy(), by_hand, rtol=1e-12)
    # an f_c scan keeps the other backgrounds' ratio
    scanned = definition.with_fraction("c", 0.5)
    expected = {"c": 0.5, "light": 0.5 * 8 / 9, "tau": 0.5 / 9}  # light : tau stays 8 : 1
    assert dict(scanned.fractions) == pytest.approx(expected, rel=1e-12)
    assert definition.formula() == "D_b = log(p_b / (0.1 p_c + 0.8 p_light + 0.1 p_tau))"


def test_track_origins_are_ftag_truth_origin_labels():
    assert TRACK_ORIGINS[pdg.ORIGIN_FROM_B] == "from B" and len(TRACK_ORIGINS) == 8
    assert [TRACK_ORIGINS[k] for k in (pdg.ORIGIN_PILEUP, pdg.ORIGIN_FAKE)] == ["pile-up", "fake"]


def test_schema_knows_every_source_key():
    names = schema()["$defs"]["sample"]["properties"]["branches"]["propertyNames"]["anyOf"]
    (listed,) = [option["enum"] for option in names if "enum" in option]
    assert listed == list(SOURCE_KEYS)


def test_a_users_class_set_is_drawn_in_its_own_colours(tmp_path, monkeypatch):
    """The plot stages carry the class set's colours and legend texts: `jettag plot-scores` of
    a quark/gluon tagger draws gluon jets in the user's orange with the user's legend text."""
    from matplotlib.colors import to_hex

    from jettag.cli import main
    from jettag.commands import stage_settings
    from jettag.plotting import style

    config_path = tmp_path / "analysis.yaml"
    config_path.write_text(yaml.safe_dump(minimal_config(class_set=_user_set(tmp_path))))
    settings = stage_settings("plot-scores", cfg.load_config(config_path), tagger="dips").as_dict()
    assert settings["class_styles"]["gluon"] == ["#ff7f0e", "gluon jets"]
    scores = {
        "tagger": "dips", "discriminant": {"signal": "gluon", "fractions": {"quark": 1.0}},
        "edges": [-2.0, 0.0, 2.0], "overflow": "folded into the first and last bins",
        "histograms": {c: {"density": [0.1, 0.4], "density_error": [0.01, 0.02], "n_jets": 50}
                       for c in ("gluon", "quark")},
        "working_points": [], "predictions": "p.h5",
    }  # fmt: skip
    (tmp_path / "scores.json").write_text(json.dumps(scores))
    drawn = {}

    def keep(fig, stem, formats):
        legend = fig.axes[0].get_legend()
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
            colour = handle.get_color() if hasattr(handle, "get_color") else handle.get_edgecolor()
            drawn[text.get_text()] = colour
        return []

    monkeypatch.setattr(style, "save_figure", keep)
    try:
        rc = main(
            [
                "plot-scores",
                "--config",
                str(config_path),
                "--tagger",
                "dips",
                "--scores",
                str(tmp_path / "scores.json"),
                "--output-stem",
                str(tmp_path / "s"),
            ]
        )
    finally:
        style.use_class_styles({})  # the next test draws the built-in sets again
    assert rc == 0
    assert "gluon jets" in drawn
    assert to_hex(drawn["gluon jets"]) == "#ff7f0e"
