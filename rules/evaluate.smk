rule sample:
    input:
        model="results/{dataset}/{method}/seed{seed}/model.pt",
        data="resources/data/{dataset}/info.json",
        image=image_input,
    output:
        samples="results/{dataset}/{method}/seed{seed}/samples.npz",
        labels="results/{dataset}/{method}/seed{seed}/samples.json",
        grid=report(
            "results/{dataset}/{method}/seed{seed}/grid.png",
            category="Samples",
            subcategory="{dataset}",
            labels={"method": "{method}", "dataset": "{dataset}", "seed": "{seed}"},
        ),
        figures=report(
            directory("results/{dataset}/{method}/seed{seed}/figures"),
            patterns=["{name}.png"],
            category="Figures",
            subcategory="{dataset}",
            labels={"method": "{method}", "figure": "{name}", "seed": "{seed}"},
        ),
        # the method's own measured numbers (Method.measurements; {} for most), merged by its score
        measurements="results/{dataset}/{method}/seed{seed}/measurements.json",
    log:
        "logs/sample/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}/{method}/seed{seed}.tsv"
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
        data=lambda w, input: os.path.dirname(input.data),
        n=n_samples_of,
        n_recon=config["n_recon"],
        device=config["device"],
        ebmbench=ebmbench_cmd,
    shell:
        "{params.ebmbench} sample --run {params.run} --out {params.out} --n {params.n} --n-recon {params.n_recon} "
        "--data {params.data} --seed {wildcards.seed} --device {params.device} --threads {threads} > {log} 2>&1"


rule uniform_noise:
    input:
        "resources/data/{dataset}/info.json",
    output:
        samples="results/{dataset}/uniform_noise/samples.npz",
        labels="results/{dataset}/uniform_noise/samples.json",
        grid="results/{dataset}/uniform_noise/grid.png",
    log:
        "logs/noise/{dataset}.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        **LIGHT,
    params:
        data=lambda w, input: os.path.dirname(input[0]),
        out=run_dir,
        n=config["n_samples"],
    shell:
        "python -m ebmbench noise --data {params.data} --n {params.n} --out {params.out} > {log} 2>&1"


rule score:
    input:
        unpack(score_inputs),
        image_input,
    output:
        metrics="results/{dataset}/{run}/metrics.json",
        # the features behind FID and IS, resampled by the table's bootstrap (ebmbench.evaluate.kept_features);
        # metrics.json records them relative to its folder
        features="results/{dataset}/{run}/features.npz",
        # samples beside their nearest training images in the FID features; metrics.json's `memorised`
        nearest=report(
            "results/{dataset}/{run}/nearest.png",
            category="5. Not copies",
            subcategory="{dataset}",
            caption="../report/nearest.rst",
            labels={"run": "{run}", "dataset": "{dataset}"},
        ),
    log:
        "logs/score/{dataset}/{run}.log",
    benchmark:
        "results/benchmarks/score/{dataset}/{run}.tsv"
    wildcard_constraints:
        run=r"uniform_noise|[a-z0-9_]+/seed\d+(/variants/[A-Za-z0-9_]+)?",
    conda:
        "../envs/cpu.yaml"
    container:
        apptainer_image
    threads: config["threads"]
    resources:
        **job_resources("score"),
    params:
        args=score_args,
        data=lambda w, input: os.path.dirname(input.data),
        device="cuda" if CUDA else "cpu",
        ebmbench=ebmbench_cmd,
    shell:
        "{params.ebmbench} score --samples {input.samples} --data {params.data} {params.args:q} "
        "--cache resources/fidelity-cache --device {params.device} --threads {threads} "
        "--features {output.features} --nearest {output.nearest} --out {output.metrics} > {log} 2>&1"


rule comparison:
    input:
        comparison_runs,
    output:
        report(
            "results/{dataset}/comparison.png",
            category="1. Comparison",
            subcategory="{dataset}",
            caption="../report/comparison.rst",
        ),
    log:
        "logs/comparison/{dataset}.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        **LIGHT,
    params:
        dirs=comparison_dirs,
        n=min(36, config["n_samples"]),
    shell:
        "python -m ebmbench comparison {params.dirs:q} --n {params.n} --out {output} > {log} 2>&1"


rule table:
    input:
        metrics=all_metrics(),
        # read through each metrics.json's `features` record (the score rule writes them beside it)
        features=[f.replace("metrics.json", "features.npz") for f in all_metrics()],
        pages=expand("results/{dataset}/comparison.png", dataset=config["datasets"]),
    output:
        table=report("results/table.csv", category="Comparison table"),
        # the claims ledger (methods/claims.csv and each ordering a paper prints between a method and its
        # baseline), measured over seeds with intervals and verdicts; a target of its own:
        # snakemake results/claims.csv --config seeds=[0,1,2]
        claims=report("results/claims.csv", category="4. Claims", caption="../report/claims.rst"),
        # the rows coloured by verdict, and each source table in its paper's shape (ebmbench.evaluate.paper_tables)
        verdicts=report("results/verdicts.html", category="2. Verdicts", caption="../report/verdicts.rst"),
        paper_tables=report(
            directory("results/paper_tables"),
            patterns=["{name}.md"],
            category="3. Paper tables",
            labels={"table": "{name}"},
        ),
    log:
        "logs/table.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        **LIGHT,
    params:
        datasets=config["datasets"],
    shell:
        # printed too: the measured numbers beside the uniform-noise reference and the papers
        "python -m ebmbench table {input.metrics} --datasets {params.datasets:q} --out {output.table} "
        "--claims {output.claims} --verdicts-html {output.verdicts} --paper-tables {output.paper_tables} "
        "2>&1 | tee {log}"
