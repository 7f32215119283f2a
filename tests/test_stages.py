"""What each stage reads from the config (jettag.stages) and the training jobs (config/jobs.py).

Presentation (labels, the experiment text, plot formats) must reach the plot stages only;
every other job's settings, hence its rerun trigger and its outputs, must not move when it
changes. The workflow tests check the same on the planned DAG (tests/test_workflow.py).
"""

from __future__ import annotations

import copy
import json

import pytest

from jettag import config as cfg
from jettag.commands import STAGES, stage_params, stage_settings
from jettag.config.jobs import TrainingVariant, parse_variant, training_job
from jettag.errors import ConfigError
from tests.conftest import REPO

# the CI analysis and its studies (ci_studies.yaml extends ci.yaml)
CI_CONFIG = REPO / "workflow/configs/ci_studies.yaml"

# One job of every non-plot stage of the CI analysis (stage, wildcards).
DATA_JOBS = [
    ("generate", {"sample": "ttbar", "shard": 1}),
    ("generate", {"sample": "zprime", "shard": 0}),
    ("ingest", {"sample": "ttbar"}),
    ("prepare", {"dataset": "ttbar"}),
    ("sample-histograms", {"sample": "ttbar"}),
    ("input-histograms", {"dataset": "ttbar"}),
    ("train", {"model": "dips", "variant": "member", "member": 0}),
    ("train", {"model": "transformer", "variant": "member", "member": 1}),
    ("train", {"model": "dips", "variant": "search/nominal"}),
    ("train", {"model": "dips", "variant": "search/2"}),
    ("train", {"model": "dips", "variant": "transfer/finetune/150"}),
    ("train", {"model": "dips", "variant": "ablation/hits"}),
    ("train", {"model": "dips", "variant": "learning_curve/250"}),
    ("train", {"model": "dips", "variant": "study/capacity/w4", "member": 1}),
    ("train", {"model": "transformer", "variant": "study/transformer_normalisation/post-norm"}),
    ("train", {"model": "dips", "variant": "snapshot/dips"}),
    ("train", {"model": "dips", "variant": "study/input_transforms/raw-norm"}),
    ("fit-baseline", {"baseline": "ip3d"}),
    ("export-onnx", {}),
    ("predict", {"tagger": "dips"}),
    ("predict", {"tagger": "ip3d"}),
    ("evaluate", {}),
    ("multiclass", {}),
    ("fraction-scan", {"dataset": "ttbar"}),
    ("working-points", {"dataset": "ttbar"}),
    ("performance", {}),
    ("saliency", {}),
    ("vertexing", {"model": "transformer"}),
    ("predict", {"tagger": "transformer@zprime"}),
    ("importance", {"model": "dips"}),
    ("ablation", {"model": "dips"}),
    ("learning-curve", {"model": "dips"}),
    ("search-summary", {"model": "dips"}),
    ("transfer-summary", {"model": "dips"}),
    ("study-summary", {"study": "capacity"}),
    ("ensemble-comparison", {"ensemble": "dips"}),
    ("study-summary", {"study": "input_transforms"}),
    ("lr-finder", {"model": "dips"}),
]
PLOT_JOBS = [
    ("plot-roc", {"dataset": "ttbar"}),
    ("plot-pt", {"dataset": "ttbar"}),
    ("plot-scores", {"tagger": "ip3d"}),
    ("plot-multiclass", {"tagger": "dips"}),
    ("plot-fraction-scan", {"dataset": "ttbar"}),
    ("plot-loss", {"model": "dips"}),
    ("plot-learning-curve", {"model": "dips"}),
    ("plot-search", {"model": "dips"}),
    ("plot-saliency", {"model": "transformer"}),
    ("plot-vertexing", {"model": "transformer"}),
    ("plot-importance", {"model": "dips"}),
    ("plot-transfer", {"model": "dips"}),
    ("plot-sample", {"sample": "zprime"}),
    ("plot-inputs", {"dataset": "ttbar"}),
    ("plot-study", {"study": "capacity"}),
    ("plot-lr-finder", {"model": "dips"}),
]
PRESENTATION_EDITS = [
    ("models.dips.label", "Renamed"),
    ("baselines.ip3d.label", "Renamed baseline"),
    ("samples.ttbar.label", "Renamed sample"),
    ("samples.zprime.label", "Renamed target"),
    ("studies.capacity.label", "Renamed study"),
    ("plots.formats", ["svg"]),
    ("plots.experiment_label", {"experiment": "CMS", "status": "Simulation Preliminary"}),
]


def _config(**edits) -> dict:
    """The CI config with dotted-path edits, validated."""
    raw = cfg.load_config(CI_CONFIG)
    for path, value in edits.items():
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[leaf] = value
    return cfg.validate_config(raw)


def test_every_stage_is_classified():
    assert {s for s, _ in DATA_JOBS} | {s for s, _ in PLOT_JOBS} == set(STAGES)
    assert all(s.startswith("plot-") for s, _ in PLOT_JOBS)


@pytest.mark.parametrize(("path", "value"), PRESENTATION_EDITS)
def test_presentation_reaches_plots_only(path, value):
    before, after = _config(), _config(**{path: value})
    for stage, wildcards in DATA_JOBS:
        assert stage_params(stage, before, **wildcards) == stage_params(stage, after, **wildcards)
    changed = [
        stage
        for stage, wildcards in PLOT_JOBS
        if stage_params(stage, before, **wildcards) != stage_params(stage, after, **wildcards)
    ]
    assert changed  # some plot shows it (which ones: the DAG table in test_workflow.py)


def test_labels_reach_only_the_plots_that_draw_them():
    before, after = _config(), _config(**{"models.dips.label": "Renamed"})
    changed = {
        (stage, tuple(w.values()))
        for stage, w in PLOT_JOBS
        if stage_settings(stage, before, **w) != stage_settings(stage, after, **w)
    }
    assert changed == {
        ("plot-roc", ("ttbar",)), ("plot-pt", ("ttbar",)), ("plot-loss", ("dips",)),
        ("plot-learning-curve", ("dips",)), ("plot-search", ("dips",)),
        ("plot-importance", ("dips",)), ("plot-transfer", ("dips",)), ("plot-study", ("capacity",)),
        ("plot-lr-finder", ("dips",)), ("plot-multiclass", ("dips",)),
        ("plot-fraction-scan", ("ttbar",)),
    }  # fmt: skip
    assert (
        stage_settings("plot-roc", after, dataset="ttbar").as_dict()["labels"]["dips"] == "Renamed"
    )


def test_input_transforms_and_the_target_reach_only_their_study():
    base = _config()
    # no input_transforms key, no new training settings: finished trainings do not rerun
    for stage, wildcards in DATA_JOBS:
        if stage == "train" and "input_transforms" not in wildcards["variant"]:
            assert (
                "input_transforms"
                not in stage_settings(stage, base, **wildcards).as_dict()["model"]["training"]
            )
    point = stage_settings(
        "train", base, model="dips", variant="study/input_transforms/raw-norm"
    ).as_dict()
    assert point["model"]["training"]["input_transforms"] == {"log": False}
    target = _config(**{"studies.input_transforms.target_val_loss": 0.9})
    changed = {
        (stage, tuple(w.values()))
        for stage, w in DATA_JOBS + PLOT_JOBS
        if stage_settings(stage, base, **w) != stage_settings(stage, target, **w)
    }
    assert changed == {("study-summary", ("input_transforms",))}  # no training reruns


def test_physics_edits_reach_the_jobs_that_read_them():
    base = _config()
    more_shards = _config(**{"samples.ttbar.n_shards": 5})
    more_events = _config(**{"samples.ttbar.events_per_shard": 401})
    job = {"sample": "ttbar", "shard": 0}
    # adding shards regenerates no existing shard; more events per shard regenerate them all
    assert stage_params("generate", base, **job) == stage_params("generate", more_shards, **job)
    assert stage_params("generate", base, **job) != stage_params("generate", more_events, **job)
    # the discriminant (f_c): evaluation stages, never training
    f_c = _config(
        **{"evaluation.discriminant": {"signal": "b", "fractions": {"c": 0.05, "light": 0.95}}}
    )
    for stage, wildcards in DATA_JOBS:
        changed = stage_params(stage, base, **wildcards) != stage_params(stage, f_c, **wildcards)
        settings = stage_settings(stage, base, **wildcards).as_dict()
        # the discriminant itself, or the multi-class stage's tasks (the discriminant first)
        reads_f_c = "discriminant" in settings.get("evaluation", {}) or "tasks" in settings
        assert changed == reads_f_c, stage


def test_test_shards_are_generated_and_go_to_the_test_split():
    config = _config(**{"samples.ttbar.n_shards": 2, "samples.ttbar.test_shards": 3})
    last = {"sample": "ttbar", "shard": 4}
    # a test shard is generated as any other shard: its own seed from its number
    assert stage_settings("generate", config, **last) == stage_settings(
        "generate", config, sample="ttbar", shard=0
    )
    with pytest.raises(ConfigError, match=r"shard 5 outside 0\.\.4"):
        stage_settings("generate", config, sample="ttbar", shard=5)
    # prepare sends every event of shards 2, 3 and 4 to the test split
    prepare = stage_settings("prepare", config, dataset="ttbar").as_dict()
    assert prepare["test_only_event_number"] == 2 * cfg.MAX_EVENT_NUMBER_PER_SHARD
    no_test_shards = _config(**{"samples.ttbar.test_shards": 0})
    assert (
        stage_settings("prepare", no_test_shards, dataset="ttbar").as_dict()[
            "test_only_event_number"
        ]
        is None
    )
    # the Z' sample, generated without them; nor for files, whatever their event numbers
    assert (
        stage_settings("prepare", config, dataset="zprime").as_dict()["test_only_event_number"]
        is None
    )


def test_settings_are_only_what_the_stage_reads():
    config = _config()
    assert stage_settings("generate", config, sample="ttbar", shard=0).as_dict()["sample"] == {
        "process": "ttbar", "sqrt_s_gev": 13000, "events_per_shard": 400,
    }  # fmt: skip
    zprime = stage_settings("generate", config, sample="zprime", shard=0).as_dict()["sample"]
    assert zprime["zprime_masses_gev"] == [1500]
    assert set(stage_settings("evaluate", config).as_dict()["evaluation"]) == {
        "discriminant", "working_points", "roc_b_efficiencies",
    }  # fmt: skip
    assert stage_settings("export-onnx", config).as_dict() == {}
    with pytest.raises(cfg.ConfigError, match=r"shard 3 outside 0\.\.2"):  # 2 + 1 test shard
        stage_settings("generate", config, sample="ttbar", shard=3)
    with pytest.raises(cfg.ConfigError, match="unknown stage 'plot-everything'"):
        stage_settings("plot-everything", config)


def test_roc_reference_falls_back_to_the_datasets_first_tagger():
    config = _config(**{"plots.reference": "dips"})
    assert stage_settings("plot-roc", config, dataset="ttbar").as_dict()["reference"] == "dips"
    config = _config(**{"plots.reference": None})
    assert stage_settings("plot-roc", config, dataset="ttbar").as_dict()["reference"] == "ip3d"


@pytest.mark.parametrize(
    "text",
    ["member", "search/nominal", "search/3", "transfer/frozen/300", "ablation/hits",
     "learning_curve/250", "study/capacity/w4", "snapshot/dips"],
)  # fmt: skip
def test_variants_read_back(text):
    assert str(parse_variant(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("members", "is not one of: member, search/nominal"),
        ("search", "is not one of"),
        ("search/best", "trial must be 'nominal' or a number"),
        ("transfer/sideways/100", "strategy 'sideways' is not one of"),
        ("transfer/finetune/0", "'0' is not a positive integer"),
        ("learning_curve/many", "'many' is not a positive integer"),
        ("ablation/", "is not one of"),
        ("snapshot/", "is not one of"),
    ],
)
def test_malformed_variants_are_errors(text, message):
    with pytest.raises(cfg.ConfigError, match=message):
        parse_variant(text)


def test_training_jobs_of_every_variant():
    config = _config()
    model = config["models"]["dips"]
    member = training_job(config, "dips", TrainingVariant())
    assert "label" not in member and member["members"] == 1
    # where a model is scored (test_datasets) is not part of how it trains
    assert {k: v for k, v in member.items() if k not in ("label", "members")} == {
        k: v for k, v in model.items() if k not in ("label", "members", "test_datasets")
    }
    # K-fold members: the ensemble size sets the folds, so it stays
    assert training_job(config, "transformer", TrainingVariant())["members"] == 2
    # trials: draws inside the search space (not the function's own draw as the expectation),
    # reproducible, different from each other, on the search's training-set size
    trials = [training_job(config, "dips", parse_variant(f"search/{k}")) for k in range(3)]
    space = config["search"]["space"]
    low, high = space["training.learning_rate"]["log_uniform"]
    rates = [t["training"]["learning_rate"] for t in trials]
    assert all(low <= r <= high for r in rates) and len(set(rates)) == 3
    assert all(t["deepsets"]["dropout"] in space["deepsets.dropout"]["choice"] for t in trials)
    assert trials[1] == training_job(config, "dips", parse_variant("search/1"))
    assert {t["training"]["max_train_jets"] for t in trials} == {config["search"]["max_train_jets"]}
    nominal = training_job(config, "dips", parse_variant("search/nominal"))
    assert nominal["training"]["learning_rate"] == model["training"]["learning_rate"]
    finetune = training_job(config, "dips", parse_variant("transfer/finetune/150"))
    assert finetune["dataset"] == "zprime" and finetune["training"]["max_train_jets"] == 150
    assert finetune["training"]["learning_rate"] == config["transfer"]["finetune_learning_rate"]
    scratch = training_job(config, "dips", parse_variant("transfer/scratch/150"))
    assert scratch["training"]["learning_rate"] == model["training"]["learning_rate"]
    ablation = training_job(config, "dips", parse_variant("ablation/hits"))
    hits = config["evaluation"]["feature_groups"]["hits"]
    assert ablation["track_inputs"] and not set(hits) & set(ablation["track_inputs"])
    curve = training_job(config, "dips", parse_variant("learning_curve/250"))
    assert curve["training"]["max_train_jets"] == 250
    assert curve["training"]["epochs"] == model["training"]["epochs"]  # epochs null: the model's
    config["evaluation"]["learning_curve"]["epochs"] = model["training"]["epochs"] + 7
    curve = training_job(config, "dips", parse_variant("learning_curve/250"))
    assert curve["training"]["epochs"] == model["training"]["epochs"] + 7
    assert training_job(config, "dips", TrainingVariant())["training"] == model["training"]


def test_training_jobs_that_make_no_sense_are_errors():
    config = _config()
    with pytest.raises(cfg.ConfigError, match=r"search\.model is 'dips'"):
        training_job(config, "transformer", parse_variant("search/0"))
    with pytest.raises(cfg.ConfigError, match=r"search trial 3 outside 0\.\.2"):
        training_job(config, "dips", parse_variant("search/3"))
    with pytest.raises(cfg.ConfigError, match=r"transfer\.model is 'dips'"):
        training_job(config, "transformer", parse_variant("transfer/scratch/150"))
    with pytest.raises(cfg.ConfigError, match=r"ablation group 'tracks' is not one of"):
        training_job(config, "dips", parse_variant("ablation/tracks"))
    with pytest.raises(cfg.ConfigError, match=r"member 1 of dips \(member\) outside 0\.\.0"):
        stage_settings("train", config, model="dips", variant="member", member=1)
    with pytest.raises(cfg.ConfigError, match=r"member 1 of dips \(search/0\) outside 0\.\.0"):
        stage_settings("train", config, model="dips", variant="search/0", member=1)


def test_more_members_retrain_no_member_unless_they_are_folds():
    config = _config()
    bigger = copy.deepcopy(config)
    bigger["models"]["dips"]["members"] = 3
    bigger["models"]["transformer"]["members"] = 3
    job = {"variant": "member", "member": 0}
    assert stage_params("train", config, model="dips", **job) == stage_params(
        "train", bigger, model="dips", **job
    )
    assert stage_params("train", config, model="transformer", **job) != stage_params(
        "train", bigger, model="transformer", **job
    )


def test_plot_commands_refuse_results_of_other_taggers(tmp_path, capsys):
    from jettag.cli import main
    from jettag.evaluation.evaluate import Metrics
    from jettag.evaluation.working_points import ScoreHistograms

    # a file of an earlier jettag (a key missing) is refused by name, not misread
    (tmp_path / "scores.json").write_text(json.dumps({"tagger": "ip3d"}))
    argv = ["plot-scores", "--config", str(CI_CONFIG), "--tagger", "dips", "--scores",
            str(tmp_path / "scores.json"), "--output-stem", str(tmp_path / "scores")]  # fmt: skip
    assert main(argv) == 2
    assert "scores.json: no ['discriminant'," in capsys.readouterr().err
    ScoreHistograms("ip3d", {}, [0.0, 1.0], "", {}, [], "p.h5").write(tmp_path / "scores.json")
    assert main(argv) == 2
    assert "scores.json: results of 'ip3d', not of 'dips'" in capsys.readouterr().err
    Metrics("ip3d_zprime", {}, {}, {}, 0.95, {}, {}, "p.h5").write(tmp_path / "zprime.json")
    (tmp_path / "wp.json").write_text(json.dumps({"paired": {"reference": "ip3d"}}))
    argv = ["plot-roc", "--config", str(CI_CONFIG), "--dataset", "ttbar", "--comparison",
            str(tmp_path / "wp.json"), "--output-stem", str(tmp_path / "roc"),
            str(tmp_path / "zprime.json")]  # fmt: skip
    assert main(argv) == 2
    assert "results of taggers this plot does not draw" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
