rule train:
    input:
        DATA + "/info.json",
        image_input,
    output:
        model=RUN + "/model.pt",
        summary=RUN + "/train.json",
        curves=report(RUN + "/curves.png", category="Training curves", subcategory="{dataset}",
                      labels={"method": "{method}", "dataset": "{dataset}", "seed": "{seed}"}),
    params:
        preset=lambda w: preset_of(config, w.dataset),
        sets=overrides_args,
        device=config["device"],
        ebmbench=ebmbench_cmd,
    threads: config.get("threads", 2)
    container:
        apptainer_image
    resources:
        **job_resources("train"),
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    shell:
        # A killed job leaves RUN/state-latest.pt (not declared, so Snakemake keeps it); the rerun resumes from it.
        "{params.ebmbench} train --method {wildcards.method} --data resources/data/{wildcards.dataset} "
        "--out results/{wildcards.dataset}/{wildcards.method}/seed{wildcards.seed} --seed {wildcards.seed} "
        "--preset {params.preset} {params.sets} --device {params.device} --threads {threads} --allow-divergence > {log} 2>&1"
