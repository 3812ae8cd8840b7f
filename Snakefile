# Regenerates every table of the five seed papers next to the published numbers:
#   snakemake --cores all reproduce_tables                 (default profile: findings on embedded data, <= 60 min)
#   snakemake --cores all --config profile=smoke           (every rule on tiny data, < 3 min)
#   snakemake --profile pipelines/profiles/paper paper_002 (the papers' protocol on real data)
# Rules live in pipelines/rules/*.smk; the grid comes from pipelines/configs (see pipelines/README.md).
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "pipelines/configs/snakemake.yaml"


validate(config, "pipelines/schemas/snakemake.schema.yaml")


# With `--sdm apptainer`, every job runs inside this image (e.g. --config container_image=mtl-repro-cuda.sif;
# containers/ builds it); unset, jobs run in the environment running Snakemake.
container: config.get("container_image") or None


include: "pipelines/rules/common.smk"
include: "pipelines/rules/prepare.smk"
include: "pipelines/rules/train.smk"
include: "pipelines/rules/report.smk"


# Defined here, not in an included file: Snakemake restores the default target after each `include:`, so a
# `default_target` set inside pipelines/rules/*.smk would be lost and a bare `snakemake` would do nothing.
rule reproduce_tables:
    """Every table and figure of the five seeds (the README's main command)."""
    default_target: True
    input:
        f"{REPORTS}/index.md",
