# Transfer learning (arXiv:2203.06210 Fig. 4): member 0 of the model, trained on its own large
# dataset, carried to the target dataset. Each strategy x training-set size x seed is its own
# job, so a cluster runs the whole scan side by side.

TRANSFER = CONFIG["transfer"]
TRANSFER_MODEL = TRANSFER["model"]
TRANSFER_RUNS = (
    [
        f"{strategy}/{jets}/{seed}"
        for strategy in TRANSFER["strategies"]
        for jets in TRANSFER["train_jets"]
        for seed in range(TRANSFER["seeds"])
    ]
    if TRANSFER_MODEL
    else []
)


wildcard_constraints:
    strategy=r"scratch|finetune|frozen",
    seed=r"\d+",


def transfer_variant(w):
    """A transfer run's training variant (its seed is the member)."""
    return f"transfer/{w.strategy}/{w.jets}"


use rule train as train_transfer with:
    input:
        training_inputs(transfer_variant),
    output:
        best="results/transfer/{model}/{strategy}/{jets}/{seed}/best.pt",
        history="results/transfer/{model}/{strategy}/{jets}/{seed}/history.csv",
    params:
        **training_params(transfer_variant, member_of=lambda w: w.seed),
    # small networks on a few thousand jets: one core each, several jobs side by side
    threads: 1
    benchmark:
        "results/benchmarks/train_transfer/{model}/{strategy}/{jets}/{seed}.tsv"
    log:
        "logs/train_transfer/{model}/{strategy}/{jets}/{seed}.log",
    resources:
        runtime=120,
        mem_mb=4000,


rule transfer_summary:
    """AUC and rejections of every run on the target test split (results/transfer/<model>.json)."""
    input:
        test=f"data/prepared/{TRANSFER['target']}/test.h5",
        pretrained="results/models/{model}/0/best.pt",
        runs=lambda w: expand(
            "results/transfer/{model}/{run}/best.pt", model=w.model, run=TRANSFER_RUNS
        ),
    output:
        json="results/transfer/{model}.json",
        md="results/transfer/{model}.md",
    params:
        settings=lambda w: settings("transfer-summary", model=w.model),
        data_dir=f"data/prepared/{TRANSFER['target']}",
        runs=lambda w, input: " ".join(f"{r}={p}" for r, p in zip(TRANSFER_RUNS, input.runs)),
    log:
        "logs/transfer/{model}.log",
    shell:
        "jettag transfer-summary --config {CONFIG_FILE} --model {wildcards.model} --data-dir"
        " {params.data_dir} --pretrained {input.pretrained} --output-json {output.json}"
        " --output-md {output.md} {params.runs}" + TO_LOG


rule plot_transfer:
    """Light rejection and AUC vs number of target training jets, per strategy."""
    input:
        "results/transfer/{model}.json",
    output:
        plot_files("results/plots/transfer_{model}", "transfer", "Training"),
    params:
        settings=lambda w: settings("plot-transfer", model=w.model),
    log:
        "logs/plots/transfer_{model}.log",
    shell:
        "jettag plot-transfer --config {CONFIG_FILE} --model {wildcards.model} --summary"
        " {input} --output-stem results/plots/transfer_{wildcards.model}" + TO_LOG
