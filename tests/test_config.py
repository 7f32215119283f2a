"""Config validation: bad keys and types fail naming the key; defaults come from the schema."""

from __future__ import annotations

import pytest
import yaml

from jettag import config as cfg
from jettag.config.jobs import parse_variant, training_job
from tests.conftest import REPO, minimal_config


def test_defaults_are_filled_from_schema():
    filled = cfg.validate_config(minimal_config())
    assert filled["ingest"]["max_tracks"] == 40
    assert filled["models"]["dips"]["training"]["weight_decay"] == 1e-5
    assert filled["models"]["dips"]["deepsets"]["track_layers"] == [16, 16]  # user value kept
    assert [c["name"] for c in filled["prepare"]["classes"]] == ["b", "c", "light"]
    # the typed views build from the filled dict
    model = cfg.model_config(filled, "dips")
    assert model.training.batch_size == 64 and model.deepsets.jet_layers == (16,)
    sim = cfg.section(cfg.SimulationConfig, filled["simulation"])
    assert sim.tracker.d0_resolution_mm.constant == pytest.approx(0.010)


def test_unknown_key_is_named():
    raw = minimal_config()
    raw["models"]["dips"]["training"]["lerning_rate"] = 0.1
    with pytest.raises(cfg.ConfigError, match=r"models\.dips\.training.*'lerning_rate'"):
        cfg.validate_config(raw)


def test_wrong_type_is_named():
    raw = minimal_config()
    raw["samples"]["ttbar"]["n_shards"] = "four"
    with pytest.raises(cfg.ConfigError, match=r"samples\.ttbar\.n_shards.*not of type 'integer'"):
        cfg.validate_config(raw)


def test_root_sample_needs_files():
    raw = minimal_config(samples={"ttbar": {"source": "root"}})
    with pytest.raises(cfg.ConfigError, match="'files' is a required property"):
        cfg.validate_config(raw)


def test_cross_references_are_checked():
    raw = minimal_config()
    raw["models"]["dips"]["dataset"] = "zprime"
    with pytest.raises(cfg.ConfigError, match=r"models\.dips\.dataset 'zprime' is not in samples"):
        cfg.validate_config(raw)
    raw = minimal_config()
    raw["prepare"] = {"split": {"train": 0.5, "val": 0.2, "test": 0.2}}
    with pytest.raises(cfg.ConfigError, match="add up to 1"):
        cfg.validate_config(raw)


@pytest.mark.parametrize("path", ["config.yaml", "workflow/configs/ci.yaml"])
def test_shipped_configs_are_valid(path):
    loaded = cfg.load_config(REPO / path)
    assert set(loaded["models"]) and set(loaded["baselines"])


# ATL-PHYS-PUB-2020-014's DIPS inputs: IP significances, pT fraction, dR and hit counts
ATLAS_DIPS_INPUTS = [
    "IP3D_signed_d0_significance", "IP3D_signed_z0_significance", "ptfrac", "dr",
    "numberOfPixelHits", "numberOfSCTHits", "numberOfInnermostPixelLayerHits",
    "numberOfNextToInnermostPixelLayerHits", "numberOfPixelSharedHits", "numberOfPixelHoles",
]  # fmt: skip


def test_the_default_dips_reads_atlas_dips_inputs_and_the_transformer_every_input():
    loaded = cfg.load_config(REPO / "config.yaml")
    models = loaded["models"]
    assert models["dips"]["track_inputs"] == ATLAS_DIPS_INPUTS
    assert models["dips_jet"]["track_inputs"] == ATLAS_DIPS_INPUTS
    prepared = [t["name"] for t in loaded["prepare"]["track_inputs"]]
    assert set(ATLAS_DIPS_INPUTS) < set(prepared)
    # the GN2-like transformer reads raw d0, z0 sin(theta), deta, dphi and charge as well
    assert models["transformer"].get("track_inputs") is None
    assert {"d0", "z0SinTheta", "deta", "dphi", "charge"} <= set(prepared)


def test_dips_members_anneal_and_the_studies_keep_the_recipe_they_measured():
    loaded = cfg.load_config(REPO / "config.yaml")
    for name in ("dips", "dips_jet"):  # the dips_schedule study's winner
        training = loaded["models"][name]["training"]
        assert (training["schedule"]["name"], training["learning_rate"], training["epochs"]) == (
            "cosine",
            0.003,
            15,
        )
    # 15 epochs are 45 steps on 3000 jets: the learning curve gives every size 40
    curve = training_job(loaded, "dips", parse_variant("learning_curve/3000"))
    assert curve["training"]["epochs"] == 40
    # the studies measured on the old constant-1e-3 recipe pin it, so a rerun reproduces them
    studies = cfg.load_config(REPO / "workflow/configs/studies.yaml")
    old = {"name": "constant", "warmup_fraction": 0.0, "min_lr_factor": 0.01}
    for variant in ("study/dips_learning_rate/lr1e-3", "study/dips_schedule/const1e-3"):
        training = training_job(studies, "dips", parse_variant(variant))["training"]
        assert (training["schedule"], training["learning_rate"], training["epochs"]) == (
            old,
            0.001,
            40,
        )
    snapshot = training_job(studies, "dips", parse_variant("snapshot/dips"))["training"]
    assert (snapshot["learning_rate"], snapshot["epochs"]) == (0.001, 40)


def test_yaml_is_read_safely(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load_config(bad)
    assert yaml.safe_load("a: 1") == {"a": 1}


def test_search_trials_sample_the_space_and_are_validated():
    raw = minimal_config()
    raw["search"] = {
        "model": "dips",
        "trials": 40,
        "space": {
            "training.learning_rate": {"log_uniform": [1e-4, 1e-2]},
            "deepsets.track_layers": {"choice": [[8], [16, 16]]},
            "deepsets.dropout": {"uniform": [0.0, 0.3]},
        },
    }
    config = cfg.validate_config(raw)
    trials = [cfg.sample_trial(config["seed"], config["search"], t) for t in range(40)]
    # seeded per trial
    assert trials == [cfg.sample_trial(config["seed"], config["search"], t) for t in range(40)]
    rates = [t["training.learning_rate"] for t in trials]
    assert all(1e-4 <= r <= 1e-2 for r in rates)
    # log-uniform: about half the draws below the geometric midpoint 1e-3
    assert 10 < sum(r < 1e-3 for r in rates) < 30
    assert {str(t["deepsets.track_layers"]) for t in trials} == {"[8]", "[16, 16]"}
    section = cfg.trial_section(config, 3)
    assert section["training"]["learning_rate"] == trials[3]["training.learning_rate"]
    assert section["training"]["max_train_jets"] == 20000  # the search subset
    assert cfg.trial_section(config, None)["training"]["learning_rate"] == 0.005  # as configured

    raw["search"]["space"] = {"deepsets.dropout": {"choice": ["lots"]}}
    with pytest.raises(cfg.ConfigError, match=r"search trial 0.*models\.dips\.deepsets\.dropout"):
        cfg.validate_config(raw)
    raw["search"]["space"] = {"optimiser.beta": {"uniform": [0.8, 0.9]}}
    with pytest.raises(cfg.ConfigError, match=r"'optimiser\.beta' is not a path"):
        cfg.validate_config(raw)
