def prepared(name, *files):
    """Prepared files of the dataset a tagger uses."""
    return [f"data/prepared/{tagger_dataset(name)}/{f}" for f in files]


rule train:
    """One member of a network tagger; resumes from last.pt after an interruption."""
    input:
        lambda w: prepared(w.model, "train.h5", "val.h5", "norm.yaml", "weights.yaml"),
    output:
        best="results/models/{model}/{member}/best.pt",
        history="results/models/{model}/{member}/history.csv",
    params:
        settings=lambda w: settings(seed=CONFIG["seed"], model=training_settings(CONFIG["models"][w.model])),
        data_dir=lambda w: f"data/prepared/{tagger_dataset(w.model)}",
        output_dir=lambda w: f"results/models/{w.model}/{w.member}",
        launcher=lambda w: train_launcher(w.model),
    threads: workflow.cores
    benchmark:
        "results/benchmarks/train/{model}/{member}.tsv"
    log:
        "logs/train/{model}/{member}.log",
    resources:
        runtime=240,
        mem_mb=8000,
    shell:
        "{params.launcher}jettag train --config {CONFIG_FILE} --model {wildcards.model}"
        " --member {wildcards.member} --data-dir {params.data_dir}"
        " --output-dir {params.output_dir} --threads {threads} > {log} 2>&1"


rule fit_baseline:
    """Track templates of an IP3D-like baseline (no training)."""
    input:
        lambda w: prepared(w.tagger, "train.h5"),
    output:
        "results/models/{tagger}/templates.json",
    params:
        settings=lambda w: settings(baseline=CONFIG["baselines"][w.tagger]),
        data_dir=lambda w: f"data/prepared/{tagger_dataset(w.tagger)}",
    benchmark:
        "results/benchmarks/fit_baseline/{tagger}.tsv"
    log:
        "logs/fit_baseline/{tagger}.log",
    shell:
        "jettag fit-baseline --config {CONFIG_FILE} --baseline {wildcards.tagger}"
        " --data-dir {params.data_dir} --output {output} > {log} 2>&1"


rule export_onnx:
    """A trained member as ONNX (probabilities; input transforms and normalisation in metadata)."""
    input:
        "results/models/{model}/{member}/best.pt",
    output:
        "results/onnx/{model}/{member}.onnx",
    log:
        "logs/export_onnx/{model}/{member}.log",
    shell:
        "jettag export-onnx --config {CONFIG_FILE} --checkpoint {input} --output {output}"
        " > {log} 2>&1"
