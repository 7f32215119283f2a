# jettag: jet-flavour tagging from Pythia 8 events to ATLAS-style ROC curves.
#
#   snakemake --cores 2                                         # the default analysis
#   snakemake --cores 2 --configfile workflow/configs/ci.yaml   # a tiny one, for tests
#
# Each rule runs one `jettag <stage>` command with explicit inputs and outputs; `-p` prints
# it. Each rule's `params.settings` is what its command reads from the config, computed by
# the same library function the command calls (jettag.commands.stage_settings), so editing a
# key reruns exactly the jobs that read it (Snakemake's params rerun trigger): a legend label
# or plot format reruns plots only. Pass a whole config file with --configfile;
# `--config key=value` overrides would not reach the jettag commands and are refused.

import os

import jettag.config as jcfg
from jettag.io.inspect import check_input_files
from jettag.commands import stage_params
from jettag.stages import dataset_parts as jettag_dataset_parts
from jettag.stages import ingest_part_files

if workflow.overwrite_configfiles:
    if len(workflow.overwrite_configfiles) != 1:
        raise WorkflowError("give exactly one --configfile (a complete analysis config)")
    # relative where possible, so that printed commands are short and portable
    CONFIG_FILE = os.path.relpath(workflow.overwrite_configfiles[0])
else:
    CONFIG_FILE = "config.yaml"

    configfile: "config.yaml"


# Validated (and default-filled) before any job is planned: a bad key fails here.
try:
    CONFIG = jcfg.load_config(CONFIG_FILE)
except jcfg.ConfigError as err:
    raise WorkflowError(str(err)) from None
if jcfg.validate_config(jcfg.resolve_extends(config, CONFIG_FILE), CONFIG_FILE) != CONFIG:
    raise WorkflowError(
        "--config overrides are not passed to jettag commands; write them into a config file"
    )
# Input files of samples read from ROOT/HDF5: schemas only (names and types), every missing
# field and every model input a sample cannot provide reported at once, before any job.
try:
    check_input_files(CONFIG)
except jcfg.ConfigError as err:
    raise WorkflowError(str(err)) from None

# Training takes every core Snakemake gives it (--cores; the cluster profiles set their own).
# Without --cores (`snakemake --report`, a dry run) no job runs and one thread is planned.
ALL_CORES = workflow.resource_settings.cores or 1


wildcard_constraints:
    sample=r"[A-Za-z][A-Za-z0-9_]*",
    dataset=r"[A-Za-z][A-Za-z0-9_]*",
    model=r"[A-Za-z][A-Za-z0-9_]*",
    tagger=r"[A-Za-z][A-Za-z0-9_]*(@[A-Za-z][A-Za-z0-9_]*)?",
    shard=r"\d+",
    part=r"\d+",
    member=r"\d+",


# A rule's output goes to {log} (this attempt) and is appended to {log}.attempts: Snakemake
# deletes {log} before a retry, and the attempt a batch system killed at its time limit is
# the one to read. tee ignores SIGTERM so that it keeps what the command says while it stops.
TO_LOG = (
    " 2>&1 | (trap '' TERM; echo \"=== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    " (SLURM job ${{SLURM_JOB_ID:-none}})\" >> {log}.attempts; tee -a {log}.attempts > {log})"
)

MODELS = list(CONFIG["models"])
BASELINES = list(CONFIG["baselines"])
# baselines, models, then models scored on further test datasets ('<model>@<dataset>')
TAGGERS = jcfg.taggers(CONFIG)
MAIN_DATASET = jcfg.tagger_dataset(CONFIG, MODELS[0])
PLOT_FORMATS = CONFIG["plots"]["formats"]
# the discriminant behind every efficiency and rejection (evaluation.discriminant, resolved)
SIGNAL = CONFIG["evaluation"]["discriminant"]["signal"]
BACKGROUNDS = list(CONFIG["evaluation"]["discriminant"]["fractions"])
# more than three trained classes (JetClass, Xbb, FTAG with tau): the multi-class evaluation
MULTICLASS = len(CONFIG["prepare"]["classes"]) > 3
# a background fraction to trade against another (D_b's f_c): the fraction scan
FRACTION_SCAN = len(BACKGROUNDS) > 1


def settings(stage, **wildcards):
    """A rule's params.settings: what its command reads from the config (jettag.stages)."""
    return stage_params(stage, CONFIG, **wildcards)


def tagger_dataset(name):
    """Dataset whose test split scores a tagger (a model's first test dataset)."""
    return jcfg.tagger_dataset(CONFIG, name)


def train_dataset(name):
    """Dataset a model or baseline is trained on."""
    return jcfg.train_dataset(CONFIG, name)


DATASETS = sorted({tagger_dataset(t) for t in TAGGERS})


def plot_files(stem, caption, category, names=("",)):
    """A figure's files in every format; the PNG also goes into `snakemake --report`.

    stem may hold wildcards; names are suffixes of figures drawn by one job. Captions live in
    workflow/report/ (paths relative to workflow/rules/, where the rules are defined).
    """
    files = []
    for name in names:
        for ext in PLOT_FORMATS:
            path = f"{stem}{name}.{ext}"
            if ext == "png":
                path = report(path, caption=f"../report/{caption}.rst", category=category)
            files.append(path)
    return files


report: "workflow/report/workflow.rst"


# Light jobs (plots, summaries, metrics of small files) run in the Snakemake process itself
# under a cluster profile: an sbatch, its queueing and a Snakemake start-up cost more than
# they do. Anything that reads a full sample, or trains or runs a network, is submitted.
localrules:
    all,
    plot_roc,
    plot_roc_dataset,
    plot_loss,
    plot_sample,
    plot_pt,
    plot_scores,
    plot_multiclass,
    plot_fraction_scan,
    plot_inputs,
    plot_learning_curve,
    plot_saliency,
    plot_vertexing,
    plot_importance,
    plot_search,
    plot_study,
    plot_lr_finder,
    plot_transfer,
    evaluate,
    evaluate_snapshot,
    working_points,
    performance,
    multiclass,
    fraction_scan,
    ablation,
    search_summary,
    study_summary,
    transfer_summary,
    ensemble_comparison,
    export_onnx,


include: "workflow/rules/generate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/ensembles.smk"


rule all:
    input:
        expand("results/metrics/{tagger}.json", tagger=TAGGERS),
        expand("results/plots/roc.{ext}", ext=CONFIG["plots"]["formats"]),
        expand("results/plots/loss_{model}.{ext}", model=MODELS, ext=CONFIG["plots"]["formats"]),
        expand(
            "results/plots/roc_{dataset}.{ext}",
            dataset=[d for d in {tagger_dataset(t) for t in TAGGERS} if d != MAIN_DATASET],
            ext=CONFIG["plots"]["formats"],
        ),
        expand(
            "results/plots/sample_{sample}_n_tracks.{ext}",
            sample=CONFIG["samples"],
            ext=CONFIG["plots"]["formats"],
        ),
        expand("results/working_points/{dataset}.md", dataset=DATASETS),
        [
            f"results/onnx/{model}/{member}.onnx"
            for model in MODELS
            for member in range(CONFIG["models"][model]["members"])
        ],
        expand(
            "results/plots/inputs_{dataset}_jet_pt_reweighting.{ext}",
            dataset=sorted({m["dataset"] for m in CONFIG["models"].values()}),
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/pt_{dataset}_{signal}_efficiency.{ext}",
            dataset=DATASETS,
            signal=SIGNAL,
            ext=PLOT_FORMATS,
        ),
        expand("results/plots/scores_{tagger}.{ext}", tagger=TAGGERS, ext=PLOT_FORMATS),
        expand(
            "results/plots/fraction_scan_{dataset}.{ext}",
            dataset=DATASETS if FRACTION_SCAN else [],
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/multiclass_{tagger}_{kind}.{ext}",
            tagger=TAGGERS if MULTICLASS else [],
            kind=["confusion", "tasks"],
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/{kind}_{model}.{ext}",
            kind=["saliency", "importance"],
            model=MODELS,
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/search_{model}.{ext}",
            model=[SEARCH_MODEL] if SEARCH_MODEL else [],
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/transfer_{model}.{ext}",
            model=[TRANSFER_MODEL] if TRANSFER_MODEL else [],
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/ablation_{model}.{ext}",
            model=[ABLATION_MODEL] if ABLATION_MODEL else [],
            ext=PLOT_FORMATS,
        ),
        expand(
            "results/plots/learning_curve_{model}.{ext}",
            model=[CURVE_MODEL] if CURVE_SIZES else [],
            ext=PLOT_FORMATS,
        ),
        expand("results/plots/study_{study}.{ext}", study=STUDIES, ext=PLOT_FORMATS),
        expand("results/studies/{study}.md", study=STUDIES),
        expand("results/plots/lr_finder_{model}.{ext}", model=LR_FINDER_MODELS, ext=PLOT_FORMATS),
        expand(
            "results/plots/vertexing_{model}_{kind}.{ext}",
            model=VERTEXING_MODELS,
            kind=["inclusive", "exclusive"],
            ext=PLOT_FORMATS,
        ),
        expand("results/ensembles/{ensemble}.md", ensemble=SNAPSHOT_ENSEMBLES),
    default_target: True


onstart:
    # Under the SLURM executor: fail now, naming the rule, the resource and the profile key,
    # if a job asks for more than any node of its partition has (it would wait forever).
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        from jettag.cluster import check_cluster_fit, cluster_requests, query_sinfo

        try:
            check_cluster_fit(cluster_requests(workflow), query_sinfo())
        except jcfg.ConfigError as err:
            raise WorkflowError(str(err)) from None
