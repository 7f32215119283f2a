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


def transfer_inputs(w):
    """Target training files, and the pretrained model unless training from scratch."""
    data = [f"data/prepared/{TRANSFER['target']}/{f}" for f in ("train.h5", "val.h5", "norm.yaml",
                                                                  "weights.yaml")]
    if w.strategy != "scratch":
        data.append(f"results/models/{w.model}/0/best.pt")
    return data


rule train_transfer:
    """One transfer-learning run: a strategy, a number of target training jets, a seed."""
    input:
        transfer_inputs,
    output:
        best="results/transfer/{model}/{strategy}/{jets}/{seed}/best.pt",
        history="results/transfer/{model}/{strategy}/{jets}/{seed}/history.csv",
    params:
        settings=lambda w: settings(
            seed=CONFIG["seed"],
            section=training_settings(jcfg.transfer_section(CONFIG, w.strategy, int(w.jets))),
        ),
        data_dir=f"data/prepared/{TRANSFER['target']}",
        pretrained=lambda w: (
            "" if w.strategy == "scratch" else f"--pretrained results/models/{w.model}/0/best.pt"
        ),
        output_dir=lambda w: f"results/transfer/{w.model}/{w.strategy}/{w.jets}/{w.seed}",
    # small networks on a few thousand jets: one core each, several jobs side by side
    threads: 1
    benchmark:
        "results/benchmarks/train_transfer/{model}/{strategy}/{jets}/{seed}.tsv"
    log:
        "logs/train_transfer/{model}/{strategy}/{jets}/{seed}.log",
    resources:
        runtime=120,
        mem_mb=4000,
    shell:
        "jettag train --config {CONFIG_FILE} --model {wildcards.model} --transfer"
        " {wildcards.strategy} --train-jets {wildcards.jets} --member {wildcards.seed}"
        " {params.pretrained} --data-dir {params.data_dir} --output-dir {params.output_dir}"
        " --threads {threads} > {log} 2>&1"


rule transfer_summary:
    """AUC and rejections of every run on the target test split (results/transfer/<model>.json)."""
    input:
        test=f"data/prepared/{TRANSFER['target']}/test.h5",
        pretrained="results/models/{model}/0/best.pt",
        runs=lambda w: expand("results/transfer/{model}/{run}/best.pt", model=w.model,
                              run=TRANSFER_RUNS),
    output:
        json="results/transfer/{model}.json",
        md="results/transfer/{model}.md",
    params:
        settings=lambda w: settings(
            evaluation=evaluation_settings("f_c", "pt_working_point"),
            label=CONFIG["samples"][TRANSFER["target"]]["label"],
        ),
        data_dir=f"data/prepared/{TRANSFER['target']}",
        runs=lambda w, input: " ".join(f"{r}={p}" for r, p in zip(TRANSFER_RUNS, input.runs)),
    log:
        "logs/transfer/{model}.log",
    shell:
        "jettag transfer-summary --config {CONFIG_FILE} --data-dir {params.data_dir}"
        " --pretrained {input.pretrained} --output-json {output.json} --output-md {output.md}"
        " {params.runs} > {log} 2>&1"


rule plot_transfer:
    """Light rejection and AUC vs number of target training jets, per strategy."""
    input:
        "results/transfer/{model}.json",
    output:
        plot_files("results/plots/transfer_{model}", "transfer", "Training"),
    params:
        settings=lambda w: settings(plots=CONFIG["plots"]),
    log:
        "logs/plots/transfer_{model}.log",
    shell:
        "jettag plot-transfer --config {CONFIG_FILE} --summary {input}"
        " --output-stem results/plots/transfer_{wildcards.model} > {log} 2>&1"
