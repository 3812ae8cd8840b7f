rule prepare:
    """Validate a real dataset (checksums) or render a stand-in into its cache."""
    output:
        f"{RESULTS}/prepared/{{benchmark}}.json",
    log:
        f"{LOGS}/prepare/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{benchmark}}.tsv"
    params:
        python=PYTHON,
        profile=config["profile"],
    threads: 1
    priority: prepare_priority
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=0,
    conda:
        "../envs/mtl.yaml"
    shell:
        "{params.python:q} -m mtl_pipelines.cli prepare {wildcards.benchmark:q} --profile {params.profile:q} --stamp {output:q} > {log:q} 2>&1"
