"""The Snakemake workflow end to end on workflow/configs/ci.yaml, in a scratch copy of the repo."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from jettag.training.diagnosis import CASES
from tests.conftest import REPO, copy_workflow

CI_CONFIG = "workflow/configs/ci.yaml"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run snakemake in workdir and return the completed process (never raises)."""
    return subprocess.run(
        ["snakemake", "--cores", "2", *args], cwd=workdir, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A complete run of the CI analysis."""
    workdir = tmp_path_factory.mktemp("workflow")
    copy_workflow(workdir)
    run = snakemake(workdir, "--configfile", CI_CONFIG, "-p")
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir


def _planned_rules(run: subprocess.CompletedProcess) -> set[str]:
    """Rules in the job-stats table of a dry run."""
    return set(_job_counts(run))


@pytest.mark.slow
def test_ci_analysis_metrics(finished_run):
    for tagger in ("dips", "ip3d"):
        metrics = json.loads((finished_run / f"results/metrics/{tagger}.json").read_text())
        assert metrics["auc"]["b_vs_light"] > 0.7  # far better than random (0.5)
        for wp, entry in metrics["working_points"].items():
            assert abs(entry["b_efficiency"] - int(wp) / 100) < 0.01
            assert entry["light_rejection"] is None or entry["light_rejection"] > 1.5
    # every member of every network is exported; the ONNX files carry their inputs
    for member in ("dips/0", "transformer/0", "transformer/1"):
        assert (finished_run / f"results/onnx/{member}.onnx").stat().st_size > 10_000
    for name in ("roc.png", "loss_dips.png"):
        assert (finished_run / "results/plots" / name).stat().st_size > 10_000
    # every rule ran a `jettag <stage>` command that an analyst can copy
    log = sorted((finished_run / ".snakemake/log").glob("*.log"))[-1].read_text()
    commands = [
        line for line in log.splitlines()
        if line.startswith("Shell command:") and line != "Shell command: None"  # rule all
    ]  # fmt: skip
    assert commands and all(c.split(": ", 1)[1].startswith("jettag ") for c in commands)


@pytest.mark.slow
def test_ci_analysis_diagnostics(finished_run):
    results = finished_run / "results"
    table = (results / "working_points/ttbar.md").read_text()
    assert all(f"| {label} | 77 % |" in table for label in ("ip3d", "dips", "transformer"))
    ablation = json.loads((results / "ablation/dips.json").read_text())
    assert set(ablation["groups"]) == {"impact_parameters", "hits"}
    lost = {g: e["light_rejection_loss"] for g, e in ablation["groups"].items()}
    # impact parameters are what b tagging lives on; the hit counts matter far less
    assert lost["impact_parameters"] > 0.3 and lost["impact_parameters"] > lost["hits"], lost
    # each member's loss curves are diagnosed, for the loss plot and in the training log
    diagnosis = json.loads((results / "diagnosis/transformer.json").read_text())
    assert len(diagnosis["members"]) == 2
    for k, member in enumerate(diagnosis["members"]):
        assert member["case"] in CASES and member["evidence"]["epochs"] == 2
        assert member["history"] == f"results/models/transformer/{k}/history.csv"
        log = (finished_run / f"logs/train/transformer/{k}.log").read_text()
        assert f"transformer/{k} loss curves: {member['case'].replace('_', ' ')}" in log
    transformer = json.loads((results / "metrics/transformer.json").read_text())
    assert transformer["ensemble"]["n_members"] == 2  # K-fold members: a band in the ROC
    assert len(transformer["ensemble"]["working_points"]["77"]["light_rejection_members"]) == 2
    search = json.loads((results / "search/dips.json").read_text())
    assert sorted(t["trial"] for t in search["trials"]) == ["0", "1", "2", "nominal"]
    losses = [t["val_loss"] for t in search["trials"]]
    assert losses == sorted(losses) and search["best_trial"] == search["trials"][0]["trial"]
    best = yaml.safe_load((results / "search/dips_best.yaml").read_text())["models"]["dips"]
    if search["best_trial"] != "nominal":
        lr = search["trials"][0]["params"]["training.learning_rate"]
        assert best["training"]["learning_rate"] == pytest.approx(lr)
    assert "| 1 |" in (results / "search/dips.md").read_text()
    curve = json.loads((results / "learning_curve/dips.json").read_text())["points"]
    assert [p["train_jets"] for p in curve] == [250, 1000]
    assert curve[0]["train_loss"] < curve[0]["val_loss"]  # 250 jets: the model overfits
    assert curve[1]["val_loss"] < curve[0]["val_loss"]  # more data generalises better
    transfer = json.loads((results / "transfer/dips.json").read_text())
    assert {(r["strategy"], r["train_jets_requested"]) for r in transfer["runs"]} == {
        (s, n) for s in ("scratch", "finetune", "frozen") for n in (150, 300)
    }
    assert all(len(points) == 2 for points in transfer["points"].values())
    assert 0.5 < transfer["pretrained"]["auc"] <= 1.0  # the ttbar model applied to Z' jets
    for name in (
        "learning_curve_dips", "pt_ttbar_light_rejection", "scores_dips", "saliency_transformer",
        "importance_dips", "ablation_dips", "search_dips", "transfer_dips",
    ):  # fmt: skip
        assert (results / "plots" / f"{name}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_html_report_as_the_readme_writes_it(finished_run):
    """`snakemake --report results/report.html`, exactly as the README shows it (no --cores)."""
    (command,) = set(re.findall(r"`(snakemake --report [^`]*)`", (REPO / "README.md").read_text()))
    assert command == "snakemake --report results/report.html"
    # the command reads config.yaml: make it the CI analysis that ran here
    default = (finished_run / "config.yaml").read_text()
    (finished_run / "config.yaml").write_text((finished_run / CI_CONFIG).read_text())
    try:
        run = subprocess.run(shlex.split(command), cwd=finished_run, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    finally:
        (finished_run / "config.yaml").write_text(default)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = (finished_run / "results/report.html").read_text(errors="replace")
    for caption in (
        "Saliency map of",
        "Light- and c-jet rejection vs b-jet efficiency",
        "Training- and validation-set loss",
        "before and after the pT reweighting",
    ):
        assert caption in html, caption  # fmt: skip


@pytest.mark.slow
def test_stage_commands_by_hand_as_the_readme_writes_them(finished_run, tmp_path):
    """The README's `jettag train` and `jettag check-config` lines, run as printed."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("rerun any stage by hand with it, e.g.", 1)[1]
    block = block.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    commands = [line for line in lines if line]
    assert [c.split()[:2] for c in commands] == [["jettag", "train"], ["jettag", "check-config"]]
    copy_workflow(tmp_path)  # config.yaml: the default analysis; its DIPS on the CI's jets
    shutil.copytree(finished_run / "data/prepared", tmp_path / "data/prepared")
    for command in commands:
        run = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
        assert run.returncode == 0, (command, run.stderr[-3000:])
    history = (tmp_path / "results/models/dips/0/history.csv").read_text().splitlines()
    assert len(history) > 2 and (tmp_path / "results/models/dips/0/best.pt").exists()


@pytest.mark.slow
def test_every_command_read_the_settings_its_rule_recorded(finished_run):
    """The SHA-256 of the settings each command logged is that of its rule's params.settings.

    Both come from jettag.commands.stage_settings; Snakemake keeps the params of every output in
    .snakemake/metadata, which is what its rerun trigger compares against.
    """
    checked = set()
    for record_path in (finished_run / ".snakemake/metadata").iterdir():
        record = json.loads(record_path.read_text())
        if "jettag " not in (record.get("shellcmd") or ""):
            continue  # rule all
        log = (finished_run / record["log"][0]).read_text()
        (logged,) = re.findall(r"settings sha256:([0-9a-f]{64})", log)
        params = [ast.literal_eval(p) for p in record["params"]]
        digests = {hashlib.sha256(p.encode()).hexdigest() for p in params if isinstance(p, str)}
        assert logged in digests, (record["rule"], record["log"][0])
        checked.add(record["rule"])
    assert {"generate", "train", "train_trial", "train_transfer", "evaluate", "plot_roc"} <= checked
    assert len(checked) >= 30


def _edited(config: dict, path: str, value) -> dict:
    """A copy of a config with one dotted-path key set."""
    config = copy.deepcopy(config)
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return config


PLOTS_OF_DIPS = {
    "plot_roc": 1, "plot_pt": 1, "plot_loss": 1, "plot_learning_curve": 1, "plot_search": 1,
    "plot_saliency": 1, "plot_importance": 2, "plot_transfer": 1, "plot_fraction_scan": 1,
}  # fmt: skip
# the CI analysis scores on ttbar and Z' (the transformer, trained on the hybrid, on both)
EVERY_PLOT = {
    "plot_roc": 1, "plot_roc_dataset": 1, "plot_pt": 2, "plot_loss": 2, "plot_scores": 4,
    "plot_learning_curve": 1, "plot_search": 1, "plot_saliency": 2, "plot_importance": 3,
    "plot_transfer": 1, "plot_sample": 2, "plot_inputs": 2, "plot_fraction_scan": 2,
    "plot_vertexing": 1,
}  # fmt: skip
# what shows the ttbar sample: not the Z' figures (the hybrid's input plots do show it)
TTBAR_PLOTS = {**EVERY_PLOT, "plot_roc_dataset": 0, "plot_pt": 1, "plot_scores": 3,
               "plot_fraction_scan": 1, "plot_sample": 1, "plot_transfer": 0}  # fmt: skip
EVALUATION = {
    "evaluate": 4, "working_points": 2, "performance": 4, "saliency": 2, "importance": 2,
    "ablation": 1, "transfer_summary": 1, "fraction_scan": 2,
}  # fmt: skip
DOWNSTREAM_OF_DIPS_MEMBER = {
    "export_onnx": 1, "predict": 1, "evaluate": 1, "working_points": 1, "performance": 1,
    "saliency": 1, "importance": 1, "predict_ablation_nominal": 1, "ablation": 1,
    "transfer_summary": 1, "plot_roc": 1, "plot_pt": 1, "plot_loss": 1, "plot_scores": 1,
    "plot_saliency": 1, "plot_importance": 2, "plot_transfer": 1, "fraction_scan": 1,
    "plot_fraction_scan": 1,
}  # fmt: skip
# (edit, value, the jobs per rule `snakemake -n` plans after it on the finished CI analysis)
EDIT_TABLE = [
    ("models.dips.label", "DIPS renamed", {**PLOTS_OF_DIPS, "plot_scores": 1}),
    ("samples.ttbar.label", "$t\\bar{t}$ renamed", TTBAR_PLOTS),
    ("plots.formats", ["png", "svg"], EVERY_PLOT),
    ("plots.experiment_label", {"experiment": "CMS", "status": "Simulation Preliminary"},
     EVERY_PLOT),
    ("evaluation.discriminant", {"signal": "b", "fractions": {"c": 0.05, "light": 0.95}},
     {**EVALUATION, **EVERY_PLOT, "plot_loss": 0,
     "plot_learning_curve": 0, "plot_search": 0, "plot_sample": 0, "plot_inputs": 0,
     "plot_vertexing": 0}),
    # dips's own trainings: the member, the nominal search trial (the trials draw their own
    # learning rate), ablation and learning-curve retrainings, and the transfer runs (scratch
    # and frozen read it; finetune has its own rate but starts from the retrained member)
    ("models.dips.training.learning_rate", 0.004, {
        **DOWNSTREAM_OF_DIPS_MEMBER, "train": 1, "train_trial": 1, "search_summary": 1,
        "plot_search": 1, "train_ablation": 2, "predict_ablation": 2, "train_learning_curve": 2,
        "learning_curve": 1, "plot_learning_curve": 1, "train_transfer": 6}),
    # everything made from the ttbar events; the Z' sample and the transfer runs from scratch
    # on it stay
    ("samples.ttbar.events_per_shard", 401, {
        "generate": 3, "ingest": 3, "sample_histograms": 1,  # 2 + 1 test shard
        "prepare": 2, "input_histograms": 2,  # ttbar and the hybrid made with it
        "fit_baseline": 1, "train": 3, "train_trial": 4,
        "search_summary": 1, "train_ablation": 2, "predict_ablation": 2,
        "train_learning_curve": 2, "learning_curve": 1, "train_transfer": 4, "export_onnx": 3,
        "predict": 4, "predict_ablation_nominal": 1, "vertexing": 1, **EVALUATION, **EVERY_PLOT,
        "plot_sample": 1}),
]  # fmt: skip


@pytest.mark.slow
def test_rerun_logic(finished_run):
    dry = snakemake(finished_run, "--configfile", CI_CONFIG, "-n")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr

    original = yaml.safe_load((finished_run / CI_CONFIG).read_text())
    for path, value, expected in EDIT_TABLE:
        planned = _counts_after_edit(finished_run, _edited(original, path, value))
        expected = {rule: n for rule, n in expected.items() if n} | {"all": 1}
        assert planned == expected, (path, planned)

    # The search sets its own epoch count, so the epochs of the nominal model leave it alone.
    planned = _counts_after_edit(finished_run, _edited(original, "models.dips.training.epochs", 5))
    assert planned["train"] == 1 and "train_trial" not in planned, planned

    # A bigger ensemble trains only the new member; the model's predictions are redone.
    counts = _counts_after_edit(finished_run, _edited(original, "models.dips.members", 2))
    assert counts["train"] == 1 and counts["predict"] == 1, counts
    assert not {"train_ablation", "train_trial", "train_transfer"} & set(counts), counts


def _counts_after_edit(run_dir: Path, config: dict) -> dict[str, int]:
    """Write an edited config over the CI config; the jobs per rule a dry run would run."""
    original = (run_dir / CI_CONFIG).read_text()
    (run_dir / CI_CONFIG).write_text(yaml.safe_dump(config))
    try:
        dry = snakemake(run_dir, "--configfile", CI_CONFIG, "-n")
    finally:
        (run_dir / CI_CONFIG).write_text(original)
    assert dry.returncode == 0, dry.stderr
    return _job_counts(dry)


@pytest.mark.slow
def test_members_folds_trials_and_sizes_are_separate_jobs(tmp_path):
    copy_workflow(tmp_path)
    dry = snakemake(tmp_path, "--configfile", CI_CONFIG, "-n")
    assert dry.returncode == 0, dry.stderr
    counts = _job_counts(dry)
    config = yaml.safe_load((REPO / CI_CONFIG).read_text())
    models = config["models"]
    assert counts["train"] == sum(m.get("members", 1) for m in models.values())
    assert counts["train_trial"] == config["search"]["trials"] + 1  # and the nominal model
    transfer = config["transfer"]
    assert counts["train_transfer"] == 3 * len(transfer["train_jets"]) * transfer["seeds"]
    assert counts["train_learning_curve"] == len(
        config["evaluation"]["learning_curve"]["train_jets"]
    )
    assert counts["generate"] == sum(
        s["n_shards"] + s.get("test_shards", 0) for s in config["samples"].values()
    )


def _job_counts(run: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> number of jobs, from the job-stats table of a dry run."""
    counts, in_table = {}, False
    for line in (run.stdout + run.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


TRAINING_RULES = ("train", "train_ablation", "train_learning_curve", "train_trial", "lr_finder")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("profile", "size", "gpu_line"),
    [
        ("slurm", "cpus_per_task=4", "slurm_partition=gpu, gpu=1"),
        ("htcondor", "request_memory=8000", "request_gpus=1"),
    ],
)
def test_cluster_profiles_plan_the_dag(tmp_path, profile, size, gpu_line):
    """Both profiles plan every job with the training sizes set once (YAML anchors), light
    jobs local; the profile's one-line GPU variant gives every training job a GPU."""
    copy_workflow(tmp_path)
    local = _job_counts(snakemake(tmp_path, "--configfile", CI_CONFIG, "-n"))

    def plan(profile_dir: str) -> str:
        dry = subprocess.run(
            ["snakemake", "-n", "--profile", profile_dir, "--configfile", CI_CONFIG],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert dry.returncode == 0, dry.stderr[-3000:]
        assert _job_counts(dry) == local
        return dry.stdout + dry.stderr

    def resources_of(text: str, rule: str) -> list[str]:
        jobs = re.split(r"\n(?=(?:local)?rule \w+:)", text)
        return [j.split("resources:")[1].splitlines()[0] for j in jobs
                if j.startswith(f"rule {rule}:")]  # fmt: skip

    text = plan(f"workflow/profiles/{profile}")
    assert len(resources_of(text, "train")) == 3  # the CI config's members
    for rule in TRAINING_RULES:
        jobs = resources_of(text, rule)
        assert all(size in job for job in jobs), (rule, jobs)

    # the documented GPU variant: uncomment the one line the profile shows
    config = (tmp_path / f"workflow/profiles/{profile}/config.yaml").read_text()
    gpu = re.search(r"^  #   (train: &training \{.*\})$", config, re.MULTILINE)
    assert gpu, "the profile shows its one-line GPU variant"
    config = re.sub(r"^  train: &training \{.*\}$", "  " + gpu.group(1), config,
                    flags=re.MULTILINE)  # fmt: skip
    (tmp_path / "gpu_profile").mkdir()
    (tmp_path / "gpu_profile/config.yaml").write_text(config)
    text = plan("gpu_profile")
    for rule in TRAINING_RULES:
        jobs = resources_of(text, rule)
        assert all(all(part in job for part in gpu_line.split(", ")) for job in jobs), (rule, jobs)


@pytest.mark.slow
def test_bad_config_fails_before_any_job(tmp_path):
    copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / CI_CONFIG).read_text())
    config["models"]["dips"]["training"]["epochz"] = 3
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "--configfile", "bad.yaml")
    assert run.returncode != 0
    assert "models.dips.training" in run.stderr and "'epochz' was unexpected" in run.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()

    config = yaml.safe_load((REPO / CI_CONFIG).read_text())
    config["samples"]["ttbar"]["events_per_shard"] = "many"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "--configfile", "bad.yaml")
    assert run.returncode != 0
    assert "samples.ttbar.events_per_shard" in run.stderr and "not of type 'integer'" in run.stderr


@pytest.mark.slow
def test_data_parallel_training_jobs_run_under_torchrun(tmp_path):
    """training.processes: 2 makes the train rule launch two processes with torchrun."""
    copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / CI_CONFIG).read_text())
    config["models"]["dips"]["training"]["processes"] = 2
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(tmp_path, "--configfile", "ddp.yaml", "-n", "-p")
    assert dry.returncode == 0, dry.stderr[-3000:]
    commands = [line for line in dry.stdout.splitlines() if "jettag train" in line]
    ddp = [c for c in commands if "--model dips --variant member " in c]
    assert ddp and all(
        c.split("Shell command:")[-1]
        .strip()
        .startswith("torchrun --standalone --nproc-per-node 2 --no-python jettag train")
        for c in ddp
    )
    others = [c for c in commands if c not in ddp]
    assert others and not any("torchrun" in c for c in others)


CI_STUDIES = "workflow/configs/ci_studies.yaml"


@pytest.mark.slow
def test_studies_run_beside_the_finished_analysis(finished_run, tmp_path):
    """ci_studies.yaml extends ci.yaml: where that analysis ran, only the study jobs run."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)  # the other tests keep their finished run
    dry = snakemake(workdir, "--configfile", CI_STUDIES, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    studies = yaml.safe_load((REPO / CI_STUDIES).read_text())["studies"]
    runs = sum(len(s["points"]) * s.get("seeds", 3) for s in studies.values())
    assert _job_counts(dry) == {
        "train_study": runs, "predict_study": runs, "study_summary": len(studies),
        "plot_study": len(studies), "lr_finder": 1, "plot_lr_finder": 1,
        # the snapshot ensemble of DIPS: its training, scoring, metrics and the comparison
        "train_snapshot_dips": 1, "predict_snapshot": 1, "evaluate_snapshot": 1,
        "ensemble_comparison": 1, "all": 1,
    }  # fmt: skip
    run = snakemake(workdir, "--configfile", CI_STUDIES)
    assert run.returncode == 0, run.stderr[-5000:]

    capacity = json.loads((workdir / "results/studies/capacity.json").read_text())
    small, large = capacity["points"]
    assert small["n_parameters"] < large["n_parameters"]
    assert capacity["split"] == "val" and len(small["runs"]) == 2
    for point in capacity["points"]:
        losses = [r["val_loss"] for r in point["runs"]]
        assert all(0 < v < 2 for v in losses) and losses[0] != losses[1]  # two seeds
        assert point["val_loss"] == pytest.approx(sum(losses) / 2)
        assert point["train_jets"] == 400  # the study's max_train_jets
        assert all(r["diagnosis"] in CASES for r in point["runs"])
    # the noisy study replaced 30 % of the training labels of each run
    log = (workdir / "logs/train_study/dips/capacity_label_noise/w4/0.log").read_text()
    (replaced, total) = map(int, re.search(r"label noise: (\d+) of (\d+)", log).groups())
    assert replaced == round(0.3 * total) and total > 400
    batch = json.loads((workdir / "results/studies/batch_size.json").read_text())
    assert [p["set"]["training.batch_size"] for p in batch["points"]] == [64, 256]
    assert all(p["jets_per_second"] > 0 for p in batch["points"])
    placement = json.loads((workdir / "results/studies/transformer_normalisation.json").read_text())
    assert [p["name"] for p in placement["points"]] == ["post-norm"]
    assert 0 < placement["points"][0]["val_loss"] < 2  # post-norm trains to a finite loss
    transforms = json.loads((workdir / "results/studies/input_transforms.json").read_text())
    # the default target, the worst run's best validation loss: every run reaches it
    worst = max(p["val_loss"] for p in transforms["points"])  # one seed: a run's best loss
    assert transforms["target_val_loss"] == pytest.approx(worst)
    for point in transforms["points"]:
        (run,) = point["runs"]
        assert point["runs_reaching_target"] == 1 and 1 <= run["epochs_to_target"] <= 3
        assert 0 < run["seconds_to_target"] <= run["seconds"] + 1e-9
    log = (workdir / "logs/train_study/dips/input_transforms/raw-norm/0.log").read_text()
    assert "input ptfrac: un-logged" in log and "input dr: un-logged" in log
    assert "Target validation loss" in (workdir / "results/studies/input_transforms.md").read_text()
    for name in studies:
        assert (workdir / f"results/plots/study_{name}.png").stat().st_size > 10_000
        assert (
            f"| {studies[name]['points'][0]['name']} |"
            in (workdir / f"results/studies/{name}.md").read_text()
        )
    finder = json.loads((workdir / "results/lr_finder/dips.json").read_text())
    assert 10 < finder["steps_run"] <= 40 and len(finder["loss"]) == finder["steps_run"]
    assert finder["min_lr"] <= finder["suggested"]["steepest"] <= finder["max_lr"]
    assert (workdir / "results/plots/lr_finder_dips.png").stat().st_size > 10_000
    # the snapshot ensemble: a member per cycle, all 4 epochs run, compared with DIPS's member
    snapshots = workdir / "results/ensembles/dips/snapshot"
    assert sorted(p.name for p in snapshots.glob("snapshot_*.pt")) == [
        "snapshot_0.pt", "snapshot_1.pt"]  # fmt: skip
    assert len((snapshots / "history.csv").read_text().splitlines()) == 1 + 4
    comparison = json.loads((workdir / "results/ensembles/dips.json").read_text())
    deep, snapshot = comparison["ensembles"]["deep"], comparison["ensembles"]["snapshot"]
    assert (deep["n_members"], snapshot["n_members"]) == (1, 2)
    assert snapshot["cost"]["epochs"] == 4 and snapshot["cost"]["job_wall_seconds"] > 0
    assert deep["cost"]["trainings"] == 1 and deep["cost"]["job_cpu_seconds"] > 0
    light = snapshot["light"]
    assert len(light["members"]) == 2 and light["min"] <= light["mean"] <= light["max"]
    assert light["ensemble"] > 1 and light["gain"] == pytest.approx(
        light["ensemble"] / light["mean"] - 1)  # fmt: skip
    metrics = json.loads((workdir / "results/ensembles/dips/metrics.json").read_text())
    assert metrics["ensemble"]["n_members"] == 2
    assert "| snapshot | light |" in (workdir / "results/ensembles/dips.md").read_text()
    # the analysis itself is untouched: nothing of ci.yaml reruns
    again = snakemake(workdir, "--configfile", CI_CONFIG, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_the_studies_config_plans_the_default_analysis_and_its_studies(tmp_path):
    """`snakemake --cores 2 --configfile workflow/configs/studies.yaml` (docs), planned."""
    copy_workflow(tmp_path)
    dry = snakemake(tmp_path, "--configfile", "workflow/configs/studies.yaml", "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = _job_counts(dry)
    config = yaml.safe_load((REPO / "workflow/configs/studies.yaml").read_text())
    studies, snapshots = config["studies"], config["snapshot_ensembles"]
    assert counts["train_study"] == sum(len(s["points"]) * s["seeds"] for s in studies.values())
    # every member of the default analysis's models: DIPS's 5, DIPS + jet, the transformer's 2
    default_models = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    members = sum(section.get("members", 1) for section in default_models.values())
    assert members == 8
    assert counts["plot_study"] == len(studies) and counts["train"] == members
    assert counts["ensemble_comparison"] == len(snapshots) == 2
    assert all(counts[f"train_snapshot_{name}"] == 1 for name in snapshots)
