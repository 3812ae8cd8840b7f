rule prepare:
    """Validate a real dataset (checksums) or render a stand-in into its cache."""
    output:
        f"{RESULTS}/prepared/{{benchmark}}.json",
    log:
        f"{LOGS}/prepare/{{benchmark}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{benchmark}}.tsv"
    params:
        mtl=MTL,
        profile=config["profile"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=0,
    conda:
        "../envs/mtl.yaml"
    shell:
        "{params.mtl} prepare {wildcards.benchmark} --profile {params.profile} --stamp {output} > {log} 2>&1"
