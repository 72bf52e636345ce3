rule train:
    input:
        "resources/data/{dataset}/info.json",
        image_input,
    output:
        model="results/{dataset}/{method}/seed{seed}/model.pt",
        summary="results/{dataset}/{method}/seed{seed}/train.json",
        curves=report(
            "results/{dataset}/{method}/seed{seed}/curves.png",
            category="Training curves",
            subcategory="{dataset}",
            labels={"method": "{method}", "dataset": "{dataset}", "seed": "{seed}"},
        ),
        # the chain signals of every iteration and the early warnings (ebmbench.health)
        health=report(
            "results/{dataset}/{method}/seed{seed}/health.png",
            category="Training health",
            subcategory="{dataset}",
            labels={"method": "{method}", "dataset": "{dataset}", "seed": "{seed}"},
        ),
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../envs/cpu.yaml"
    container:
        apptainer_image
    threads: config["threads"]
    resources:
        **job_resources("train"),
    params:
        preset=lambda w: preset_of(config, w.dataset),
        sets=overrides_args,
        # not on the command line: recorded by Snakemake, whose params trigger reruns the job when it changes
        config=config_record,
        data=lambda w, input: os.path.dirname(input[0]),
        out=run_dir,
        device=config["device"],
        ebmbench=ebmbench_cmd,
    shell:
        # A killed job leaves state-latest.pt in the run folder (not declared, so Snakemake keeps it); the rerun resumes
        # from it. A job rerun because its config changed finds the old run's checkpoint: --other-run restart sets it aside.
        "{params.ebmbench} train --method {wildcards.method} --data {params.data} --out {params.out} "
        "--seed {wildcards.seed} --preset {params.preset} {params.sets:q} --device {params.device} --threads {threads} "
        "--other-run restart --allow-divergence > {log} 2>&1"


rule sample_variant:
    """Samples of one of a method's sampling variants (its VARIANTS) from the trained run, labelled
    "<method>@<variant>" and scored like any run (rule score)."""
    input:
        model="results/{dataset}/{method}/seed{seed}/model.pt",
        image=image_input,
    output:
        samples="results/{dataset}/{method}/seed{seed}/variants/{variant}/samples.npz",
        labels="results/{dataset}/{method}/seed{seed}/variants/{variant}/samples.json",
        grid=report(
            "results/{dataset}/{method}/seed{seed}/variants/{variant}/grid.png",
            category="Samples",
            subcategory="{dataset}",
            labels={"method": "{method}@{variant}", "dataset": "{dataset}", "seed": "{seed}"},
        ),
    log:
        "logs/sample/{dataset}/{method}/seed{seed}/{variant}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}/{method}/seed{seed}/{variant}.tsv"
    wildcard_constraints:
        variant=r"[A-Za-z0-9_]+",
    conda:
        "../envs/cpu.yaml"
    container:
        apptainer_image
    threads: config["threads"]
    resources:
        **job_resources("sample"),
    params:
        run=lambda w, input: os.path.dirname(input.model),
        out=run_dir,
        n=n_samples_of,
        device=config["device"],
        ebmbench=ebmbench_cmd,
    shell:
        "{params.ebmbench} sample --run {params.run} --variant {wildcards.variant} --out {params.out} --n {params.n} "
        "--seed {wildcards.seed} --device {params.device} --threads {threads} > {log} 2>&1"
