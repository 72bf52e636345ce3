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
