# Every training is one job of one rule: `train` (an ensemble member or K-fold fold), and
# through `use rule train as ...` each search trial (search.smk), transfer run (transfer.smk),
# ablation retraining and learning-curve point (diagnostics.smk). A variant's model section
# comes from jettag.config.jobs.training_job, for the rule's params and the command alike.

TRAIN_FILES = ["train.h5", "val.h5", "norm.yaml", "weights.yaml"]


def prepared(name, *files):
    """Prepared files of a tagger: its test split from the dataset it is scored on, the
    others (train, val, norm, weights) from the dataset it is trained on."""
    return [
        f"data/prepared/{tagger_dataset(name) if f == 'test.h5' else train_dataset(name)}/{f}"
        for f in files
    ]


def job_dataset(model, variant):
    """The dataset a training job trains on (transfer runs: the target)."""
    return jcfg.training_job(CONFIG, model, jcfg.parse_variant(variant))["dataset"]


def wildcard_model(w):
    """The model a training rule's `model` wildcard names."""
    return w.model


def training_inputs(variant_of, model_of=wildcard_model):
    """Input function of a training rule: the job's prepared files, and the pretrained model
    for transfer runs that start from it."""

    def inputs(w):
        variant, model = variant_of(w), model_of(w)
        files = [f"data/prepared/{job_dataset(model, variant)}/{f}" for f in TRAIN_FILES]
        if jcfg.parse_variant(variant).needs_pretrained:
            files.append(f"results/models/{model}/0/best.pt")
        return files

    return inputs


def training_params(
    variant_of, member_of=lambda w: "0", launcher_of=lambda w: "", model_of=wildcard_model
):
    """params of a training rule whose wildcards name a variant (and a member or seed)."""

    def pretrained(w):
        if jcfg.parse_variant(variant_of(w)).needs_pretrained:
            return f" --pretrained results/models/{model_of(w)}/0/best.pt"
        return ""

    return dict(
        settings=lambda w: settings(
            "train", model=model_of(w), variant=variant_of(w), member=int(member_of(w))
        ),
        variant=variant_of,
        member=member_of,
        pretrained=pretrained,
        data_dir=lambda w: f"data/prepared/{job_dataset(model_of(w), variant_of(w))}",
        output_dir=lambda w, output: os.path.dirname(output.best),
        launcher=launcher_of,
    )


def train_launcher(w):
    """Command prefix of a member's training: torchrun for training.processes > 1."""
    processes = CONFIG["models"][w.model]["training"]["processes"]
    if processes == 1:
        return ""
    return f"torchrun --standalone --nproc-per-node {processes} --no-python "


def member_threads(w):
    """Cores of a member's training: the model's training.num_threads, so that members of
    an ensemble can train side by side (two small models on one core each get more done
    than one after the other on two), else every core of the run."""
    threads = CONFIG["models"][w.model]["training"]["num_threads"]
    return min(threads, ALL_CORES) if threads else ALL_CORES


def member_variant(w):
    """The variant of the train rule: the model as configured."""
    return "member"


rule train:
    """One member of a network tagger; resumes from last.pt after an interruption."""
    input:
        training_inputs(member_variant),
    output:
        best="results/models/{model}/{member}/best.pt",
        history="results/models/{model}/{member}/history.csv",
    params:
        **training_params(member_variant, member_of=lambda w: w.member, launcher_of=train_launcher),
    threads: member_threads
    benchmark:
        "results/benchmarks/train/{model}/{member}.tsv"
    log:
        "logs/train/{model}/{member}.log",
    resources:
        runtime=240,
        mem_mb=8000,
    shell:
        "{params.launcher}jettag train --config {CONFIG_FILE} --model {wildcards.model}"
        " --variant {params.variant} --member {params.member}{params.pretrained}"
        " --data-dir {params.data_dir} --output-dir {params.output_dir} --threads {threads}" + TO_LOG


rule fit_baseline:
    """Track templates of an IP3D-like baseline (no training)."""
    input:
        lambda w: prepared(w.tagger, "train.h5"),
    output:
        "results/models/{tagger}/templates.json",
    params:
        settings=lambda w: settings("fit-baseline", baseline=w.tagger),
        data_dir=lambda w: f"data/prepared/{train_dataset(w.tagger)}",
    benchmark:
        "results/benchmarks/fit_baseline/{tagger}.tsv"
    log:
        "logs/fit_baseline/{tagger}.log",
    shell:
        "jettag fit-baseline --config {CONFIG_FILE} --baseline {wildcards.tagger}"
        " --data-dir {params.data_dir} --output {output}" + TO_LOG


rule export_onnx:
    """A trained member as ONNX (probabilities; input transforms and normalisation in metadata)."""
    input:
        "results/models/{model}/{member}/best.pt",
    output:
        "results/onnx/{model}/{member}.onnx",
    params:
        settings=lambda w: settings("export-onnx"),
    log:
        "logs/export_onnx/{model}/{member}.log",
    shell:
        "jettag export-onnx --config {CONFIG_FILE} --checkpoint {input} --output {output}" + TO_LOG
