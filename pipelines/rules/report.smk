rule report_study:
    """Tables (md, tex, csv) and figures of one study, published numbers beside ours; its index row; its
    summary row and a copy of its figures (`mtl dvc --summary`: what `snakemake --report` and `dvc metrics
    show` / `dvc plots show` show)."""
    input:
        study_inputs,
    output:
        md=f"{REPORTS}/{{study}}/table.md",
        tex=f"{REPORTS}/{{study}}/table.tex",
        csv=f"{REPORTS}/{{study}}/table.csv",
        html=report(
            f"{REPORTS}/{{study}}/table.html",
            caption="../captions/table.rst",
            category="Tables",
            subcategory="{study}",
            labels={"study": "{study}", "what": "tables (ours, published), verdicts"},
        ),
        summary=f"{REPORTS}/{{study}}/summary.json",
        metrics=f"{REPORTS}/summary/metrics/{{study}}.json",
        figures=report(
            directory(f"{REPORTS}/summary/figures/{{study}}"),
            patterns=["{name}.png"],
            caption="../captions/figure.rst",
            category="Figures",
            subcategory="{study}",
            labels={"study": "{study}", "what": "{name}"},
        ),
    log:
        f"{LOGS}/report/{{study}}.log",
    params:
        python=PYTHON,
        profile=config["profile"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    conda:
        "../envs/mtl.yaml"
    shell:
        "({params.python:q} -m mtl_pipelines.cli report {wildcards.study:q} --profile {params.profile:q} && "
        "{params.python:q} -m mtl_pipelines.cli dvc --profile {params.profile:q} --summary {wildcards.study:q}) "
        "> {log:q} 2>&1"


rule report_index:
    """reports/<profile>/index.md (+ .html) from the studies' summary.json: real vs stand-in, scale, distance."""
    input:
        [t for s in CHOSEN for t in study_tables(s)],
    output:
        md=f"{REPORTS}/index.md",
        html=report(f"{REPORTS}/index.html", caption="../captions/index.rst", category="Index"),
    log:
        f"{LOGS}/report/index.log",
    params:
        python=PYTHON,
        profile=config["profile"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    conda:
        "../envs/mtl.yaml"
    shell:
        "{params.python:q} -m mtl_pipelines.cli report index --profile {params.profile:q} > {log:q} 2>&1"


rule paper_000:
    """F-MTL (seed 000) tables and Fig. 3."""
    input:
        [t for s in CHOSEN if STUDIES[s]["paper"] == "000" for t in study_tables(s)],


rule paper_001:
    """'Challenging common assumptions in MTL' (seed 001)."""
    input:
        [t for s in CHOSEN if STUDIES[s]["paper"] == "001" for t in study_tables(s)],


rule paper_002:
    """SAMO (seed 002)."""
    input:
        [t for s in CHOSEN if STUDIES[s]["paper"] == "002" for t in study_tables(s)],


rule paper_003:
    """Aligned-MTL (seed 003)."""
    input:
        [t for s in CHOSEN if STUDIES[s]["paper"] == "003" for t in study_tables(s)],


rule paper_004:
    """ConsMTL (seed 004)."""
    input:
        [t for s in CHOSEN if STUDIES[s]["paper"] == "004" for t in study_tables(s)],
