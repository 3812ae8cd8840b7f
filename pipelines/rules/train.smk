rule train:
    """Train (or resume) one run: per-epoch metrics.jsonl and an atomic checkpoint after every epoch."""
    input:
        config=f"{RESULTS}/configs/{{run}}.yaml",
        data=benchmark_stamp,
    output:
        final=f"{RESULTS}/runs/{{run}}/final.json",
        metrics=f"{RESULTS}/runs/{{run}}/metrics.jsonl",
        checkpoint=f"{RESULTS}/runs/{{run}}/checkpoint.pt",
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run}}.tsv"
    params:
        mtl=MTL,
        run_dir=lambda wildcards, output: os.path.dirname(output.final),
    threads: 1
    resources:
        mem_mb=config["mem_mb"],
        runtime=config["runtime_min"],
        gpu=config["gpus"],
    conda:
        "../envs/mtl.yaml"
    shell:
        # The run id ends with the hash of its resolved config: a changed study or profile is a new run.
        "{params.mtl} train {input.config} --run-dir {params.run_dir} --quiet > {log} 2>&1"


rule evaluate:
    """Selected clean test metrics and the corrupted test sets of one finished run."""
    input:
        final=f"{RESULTS}/runs/{{run}}/final.json",
        stl=stl_evals,
    output:
        f"{RESULTS}/runs/{{run}}/eval.json",
    log:
        f"{LOGS}/evaluate/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{run}}.tsv"
    params:
        mtl=MTL,
        run_dir=lambda wildcards, input: os.path.dirname(input.final),
        stl=lambda wildcards, input: " ".join(os.path.dirname(p) for p in input.stl),
    threads: 1
    resources:
        mem_mb=config["mem_mb"],
        runtime=config["runtime_min"],
        gpu=config["gpus"],
    conda:
        "../envs/mtl.yaml"
    shell:
        "{params.mtl} evaluate {params.run_dir} --quiet --stl {params.stl} > {log} 2>&1"
