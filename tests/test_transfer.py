"""Transfer learning from the small ttbar sample to a small Z' sample made by Pythia here."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from jettag import config as cfg
from jettag.cli import main
from jettag.errors import InputError
from jettag.evaluation.evaluate import evaluate
from jettag.evaluation.predict import predict
from jettag.evaluation.transfer import markdown as transfer_markdown
from jettag.evaluation.transfer import transfer_summary
from jettag.features.prepare import prepare_dataset
from jettag.io.ingest import ingest_sample
from jettag.simulate.generate import generate_shard
from jettag.training.checkpoint import load_checkpoint
from jettag.training.loop import train_model
from tests.conftest import d_b, minimal_config

ZPRIME = {"source": "generate", "process": "zprime", "zprime_masses_gev": [1000.0],
          "n_shards": 1, "events_per_shard": 120}  # fmt: skip


def transfer_config(**transfer) -> dict:
    """The minimal config with a Z' sample and a transfer section aimed at it."""
    raw = minimal_config()
    raw["samples"]["zprime"] = dict(ZPRIME)
    raw["transfer"] = {"model": "dips", "target": "zprime", "train_jets": [100], "seeds": 2,
                       "batch_size": 25, "epochs": 3, "patience": 3, **transfer}  # fmt: skip
    return cfg.validate_config(raw)


@pytest.fixture(scope="module")
def zprime(tmp_path_factory) -> Path:
    """Prepared train/val/test of a small 1 TeV Z' -> qq sample."""
    config = transfer_config()
    base = tmp_path_factory.mktemp("zprime")
    sample = cfg.sample_config(config, "zprime")
    generate_shard("zprime", sample, cfg.section(cfg.SimulationConfig, config["simulation"]),
                   config["seed"], 0, base / "0.root")  # fmt: skip
    ingest_sample(cfg.reading_config(config, "zprime"), [base / "0.root"],
                  cfg.section(cfg.IngestConfig, config["ingest"]), base / "zprime.h5")  # fmt: skip
    out = base / "prepared"
    prepare_dataset(base / "zprime.h5", cfg.section(cfg.PrepareConfig, config["prepare"]), 3, out)
    return out


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, prepared) -> Path:
    """DIPS trained on the ttbar sample: the model to carry over."""
    out = tmp_path_factory.mktemp("pretrained")
    train_model("dips", cfg.model_config(transfer_config(), "dips"), prepared, out, seed=1)
    return out / "best.pt"


def transfer_model(strategy: str, train_jets: int = 100, **training) -> cfg.ModelConfig:
    """The model section of a transfer job, with training keys overridden."""
    model = cfg.section(
        cfg.ModelConfig, cfg.transfer_section(transfer_config(), strategy, train_jets)
    )
    return dataclasses.replace(model, training=dataclasses.replace(model.training, **training))


def test_transfer_section_changes_only_what_the_strategy_needs():
    config = transfer_config(finetune_learning_rate=2e-4, learning_rate=None)
    scratch = cfg.transfer_section(config, "scratch", 300)
    finetune = cfg.transfer_section(config, "finetune", 300)
    source = config["models"]["dips"]
    assert scratch["dataset"] == finetune["dataset"] == "zprime"
    assert scratch["training"]["learning_rate"] == source["training"]["learning_rate"]
    assert finetune["training"]["learning_rate"] == 2e-4
    assert scratch["training"]["max_train_jets"] == 300 and scratch["training"]["batch_size"] == 25
    assert scratch["deepsets"] == source["deepsets"]  # same network, so the weights fit


def test_frozen_keeps_the_track_network_and_the_source_normalisation(tmp_path, pretrained, zprime):
    history = train_model("dips_transfer", transfer_model("frozen"), zprime, tmp_path, seed=1,
                          pretrained=pretrained, freeze_track_encoder=True)  # fmt: skip
    assert len(history) == 3
    source, tuned = load_checkpoint(pretrained), load_checkpoint(tmp_path / "last.pt")
    for key, value in source["model_state"].items():
        same = torch.equal(value, tuned["model_state"][key])
        assert same == key.startswith("track_network."), key
    # the pretrained model's inputs are scaled as on ttbar, not refitted on the Z' sample
    assert tuned["inputs"] == source["inputs"]
    zprime_norm = yaml.safe_load((zprime / "norm.yaml").read_text())["tracks"]
    assert tuned["inputs"]["tracks"] != zprime_norm
    assert tuned["pretrained"] == str(pretrained) and tuned["frozen_track_encoder"]


def test_finetune_trains_every_weight_from_the_pretrained_ones(tmp_path, pretrained, zprime):
    train_model("dips_transfer", transfer_model("finetune", learning_rate=1e-6), zprime, tmp_path,
                seed=1, pretrained=pretrained)  # fmt: skip
    source, tuned = load_checkpoint(pretrained), load_checkpoint(tmp_path / "last.pt")
    for key, value in source["model_state"].items():
        after = tuned["model_state"][key]
        assert not torch.equal(value, after), key  # every weight moved...
        assert torch.allclose(value, after, atol=1e-4), key  # ...a little, from where it was


def test_scratch_and_pretrained_start_apart(tmp_path, pretrained, zprime):
    scratch = train_model("dips_transfer", transfer_model("scratch", epochs=1), zprime,
                          tmp_path / "s", seed=1)  # fmt: skip
    tuned = train_model("dips_transfer", transfer_model("finetune", epochs=1), zprime,
                        tmp_path / "f", seed=1, pretrained=pretrained)  # fmt: skip
    # one epoch on 100 jets: the pretrained start already separates b from light, random does not
    assert tuned[0]["val_loss"] < scratch[0]["val_loss"]


def test_a_pretrained_model_of_another_shape_is_refused(tmp_path, pretrained, zprime):
    model = transfer_model("finetune")
    wider = dataclasses.replace(
        model, deepsets=dataclasses.replace(model.deepsets, track_layers=(32, 16))
    )
    with pytest.raises(InputError, match=rf"{pretrained.name}: pretrained deepsets .* differs"):
        train_model("dips_transfer", wider, zprime, tmp_path, seed=1, pretrained=pretrained)
    assert not (tmp_path / "last.pt").exists()


def test_summary_agrees_with_predict_and_evaluate(tmp_path, pretrained, zprime):
    runs = {}
    for strategy, seed in (("scratch", 0), ("scratch", 1), ("frozen", 0)):
        out = tmp_path / strategy / str(seed)
        train_model("dips_transfer", transfer_model(strategy), zprime, out, seed=1, member=seed,
                    pretrained=None if strategy == "scratch" else pretrained,
                    freeze_track_encoder=strategy == "frozen")  # fmt: skip
        runs[f"{strategy}/100/{seed}"] = out / "best.pt"
    result = transfer_summary("dips", runs, pretrained, zprime, d_b(0.018), 0.77).to_dict()
    assert [p["seeds"] for p in result["points"]["scratch"]] == [2]
    scratch_runs = [r for r in result["runs"] if r["strategy"] == "scratch"]
    assert result["points"]["scratch"][0]["auc_mean"] == pytest.approx(
        np.mean([r["auc"] for r in scratch_runs])
    )
    # one run through the predict and evaluate stages gives the very same numbers
    evaluation = cfg.section(cfg.EvaluationConfig, transfer_config()["evaluation"])
    predict("dips", zprime / "test.h5", [runs["frozen/100/0"]], "network", tmp_path / "p.h5")
    metrics = evaluate(tmp_path / "p.h5", d_b(0.018), evaluation.working_points,
                       evaluation.roc_b_efficiencies).to_dict()  # fmt: skip
    (frozen,) = [r for r in result["runs"] if r["strategy"] == "frozen"]
    assert frozen["auc"] == pytest.approx(metrics["auc"]["b_vs_light"], rel=1e-6)
    assert frozen["light_rejection"] == pytest.approx(
        metrics["working_points"]["77"]["light_rejection"], rel=1e-6
    )
    assert "| frozen | 100 | 1 |" in transfer_markdown(result)


def test_cli_refuses_inconsistent_transfer_flags(tmp_path, capsys, zprime):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(transfer_config()))
    common = ["train", "--config", str(path), "--model", "dips", "--data-dir", str(zprime),
              "--output-dir", str(tmp_path / "out")]  # fmt: skip
    assert main([*common, "--variant", "transfer/finetune/100"]) == 2
    assert "--pretrained is required" in capsys.readouterr().err
    assert main([*common, "--variant", "transfer/scratch/100", "--member", "2"]) == 2
    assert "member 2 of dips (transfer/scratch/100) outside 0..1" in capsys.readouterr().err
    assert main([*common, "--pretrained", str(zprime / "norm.yaml")]) == 2
    assert "--pretrained is only for transfer/finetune|frozen" in capsys.readouterr().err
    assert main([*common, "--variant", "transfer/sideways/100"]) == 2
    assert "strategy 'sideways' is not one of" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_transfer_config_errors_name_the_key():
    with pytest.raises(cfg.ConfigError, match=r"transfer\.target 'wprime' is not a sample"):
        transfer_config(target="wprime")
    with pytest.raises(cfg.ConfigError, match=r"transfer\.train_jets 10 is smaller"):
        transfer_config(train_jets=[10, 100])
