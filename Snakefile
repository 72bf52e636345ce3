# EBM reproducibility suite: prepare data -> train -> sample -> score -> table (+ report).
# Rules only wire files; every step is a `python -m ebmbench ...` call that runs by hand too.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# `--config seeds=[0,1,2]` arrives as strings: the seeds are numbers (a claims run over seeds, README)
config["seeds"] = [int(s) if isinstance(s, str) and s.strip().isdigit() else s for s in config.get("seeds", [])]


validate(config, "config/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/container.smk"


rule all:
    input:
        "results/table.csv",
