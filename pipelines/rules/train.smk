from mtl_pipelines.run import device_for_gpus


rule train:
    """Train (or resume) the runs of one job: per run metrics.jsonl, final.json and an atomic checkpoint after
    every epoch (MT10 SAC runs: every evaluation) under results/<profile>/runs/<run>/; the stamp lists the runs
    and their wall times. A killed job run again resumes each run from its last checkpoint."""
    input:
        job=f"{RESULTS}/jobs/{{job}}.yaml",
        data=benchmark_stamp,
    output:
        f"{RESULTS}/jobs/{{job}}.trained.json",
    log:
        f"{LOGS}/train/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{job}}.tsv"
    params:
        python=PYTHON,
        # the reserved GPUs decide the device (cuda: the one CUDA_VISIBLE_DEVICES shows; none: cpu)
        device=lambda wildcards, resources: device_for_gpus(resources.gpu),
    threads: 1
    priority: job_priority
    resources:
        mem_mb=config["mem_mb"],
        runtime=job_runtime,
        gpu=config["gpus"],
    conda:
        "../envs/mtl.yaml"
    shell:
        # Run ids end with the hash of their resolved config: a changed study or profile is a new run.
        "{params.python:q} -m mtl_pipelines.cli train --job {input.job:q} --stamp {output:q} --device {params.device:q} --quiet > {log:q} 2>&1"


rule evaluate:
    """Selected clean test metrics and the corrupted test sets of every run of one trained job (supervised jobs
    only: MT10 SAC runs evaluate while they train, and the report reads their trained stamp)."""
    input:
        job=f"{RESULTS}/jobs/{{job}}.yaml",
        trained=f"{RESULTS}/jobs/{{job}}.trained.json",
        stl=stl_jobs_evaluated,
    output:
        f"{RESULTS}/jobs/{{job}}.evaluated.json",
    log:
        f"{LOGS}/evaluate/{{job}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{job}}.tsv"
    params:
        python=PYTHON,
        device=lambda wildcards, resources: device_for_gpus(resources.gpu),
    threads: 1
    resources:
        mem_mb=config["mem_mb"],
        runtime=job_runtime,
        gpu=config["gpus"],
    conda:
        "../envs/mtl.yaml"
    shell:
        "{params.python:q} -m mtl_pipelines.cli evaluate --job {input.job:q} --stamp {output:q} --device {params.device:q} --quiet > {log:q} 2>&1"
