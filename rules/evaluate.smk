rule sample:
    input:
        model=RUN + "/model.pt",
        data=DATA + "/info.json",
        image=image_input,
    output:
        samples=RUN + "/samples.npz",
        labels=RUN + "/samples.json",
        grid=report(RUN + "/grid.png", category="Samples", subcategory="{dataset}",
                    labels={"method": "{method}", "dataset": "{dataset}", "seed": "{seed}"}),
        figures=report(directory(RUN + "/figures"), patterns=["{name}.png"], category="Figures",
                       subcategory="{dataset}", labels={"method": "{method}", "figure": "{name}", "seed": "{seed}"}),
    params:
        run=RUN,
        n=n_samples_of,
        n_recon=config.get("n_recon", 300),
        device=config["device"],
        ebmbench=ebmbench_cmd,
    threads: config.get("threads", 2)
    container:
        apptainer_image
    resources:
        **job_resources("sample"),
    log:
        "logs/sample/{dataset}/{method}/seed{seed}.log",
    shell:
        "{params.ebmbench} sample --run {params.run} --out {params.run} --n {params.n} --n-recon {params.n_recon} "
        "--data resources/data/{wildcards.dataset} --seed {wildcards.seed} --device {params.device} "
        "--threads {threads} > {log} 2>&1"


rule uniform_noise:
    input:
        DATA + "/info.json",
    output:
        samples="results/{dataset}/uniform_noise/samples.npz",
        labels="results/{dataset}/uniform_noise/samples.json",
        grid="results/{dataset}/uniform_noise/grid.png",
    params:
        n=config["n_samples"],
    log:
        "logs/noise/{dataset}.log",
    shell:
        "python -m ebmbench noise --data resources/data/{wildcards.dataset} --n {params.n} "
        "--out results/{wildcards.dataset}/uniform_noise > {log} 2>&1"


def score_inputs(w):
    inputs = {"samples": f"results/{w.dataset}/{w.run}/samples.npz", "data": f"resources/data/{w.dataset}/info.json"}
    if extractor_of(config, w.dataset) == "digits":
        inputs["weights"] = CLASSIFIER
    if w.run != "uniform_noise":
        inputs["figures"] = f"results/{w.dataset}/{w.run}/figures"
    return inputs


def score_args(w, input):
    args = [f"--extractor {extractor_of(config, w.dataset)}"]
    if "weights" in input.keys():
        args.append(f"--weights {input.weights}")
    elif config.get("metrics", {}).get("inception_weights"):
        args.append(f"--weights {shlex.quote(config['metrics']['inception_weights'])}")
    method = w.run.split("/")[0]
    if w.run != "uniform_noise" and get_method(method).reconstructs():
        args.append(f"--recon {input.figures}/recon.npz")
    return " ".join(args)


rule score:
    input:
        unpack(score_inputs),
        image_input,
    output:
        metrics="results/{dataset}/{run}/metrics.json",
        # the features behind FID and IS, resampled by the table's bootstrap (ebmbench.kept)
        features="results/{dataset}/{run}/features.npz",
    wildcard_constraints:
        run=r"uniform_noise|[a-z0-9_]+/seed\d+",
    params:
        args=score_args,
        device="cuda" if str(config["device"]).startswith("cuda") else "cpu",
        ebmbench=ebmbench_cmd,
    threads: config.get("threads", 2)
    container:
        apptainer_image
    resources:
        **job_resources("score"),
    log:
        "logs/score/{dataset}/{run}.log",
    shell:
        "{params.ebmbench} score --samples {input.samples} --data resources/data/{wildcards.dataset} {params.args} "
        "--cache resources/fidelity-cache --device {params.device} --threads {threads} --out {output.metrics} > {log} 2>&1"


def comparison_runs(w):
    """The runs of the first seed on this dataset, and the uniform noise (samples and metrics)."""
    dirs = [RUN.format(method=m, dataset=w.dataset, seed=config["seeds"][0]) for m, d in planned_runs(config)
            if d == w.dataset] + [f"results/{w.dataset}/uniform_noise"]
    return [f"{d}/{f}" for d in dirs for f in ("samples.npz", "metrics.json")]


rule comparison:
    input:
        comparison_runs,
    output:
        report("results/{dataset}/comparison.png", category="1. Comparison", subcategory="{dataset}",
               caption="../report/comparison.rst"),
    params:
        dirs=lambda w, input: " ".join(dict.fromkeys(f.rsplit("/", 1)[0] for f in input)),
        n=min(36, config["n_samples"]),
    log:
        "logs/comparison/{dataset}.log",
    shell:
        "python -m ebmbench.comparison {params.dirs} --n {params.n} --out {output} > {log} 2>&1"


rule table:
    input:
        metrics=all_metrics(),
        features=[f.replace("metrics.json", "features.npz") for f in all_metrics()],
        pages=expand("results/{dataset}/comparison.png", dataset=config["datasets"]),
    output:
        table=report("results/table.csv", category="Comparison table"),
        # each ordering a paper prints between a method and its baseline, with the measured values
        orderings=report("results/orderings.csv", category="Comparison table"),
        # the rows coloured by verdict, and each source table in its paper's shape (ebmbench.paper_tables)
        verdicts=report("results/verdicts.html", category="2. Verdicts", caption="../report/verdicts.rst"),
        paper_tables=report(directory("results/paper_tables"), patterns=["{name}.md"], category="3. Paper tables",
                            labels={"table": "{name}"}),
    params:
        datasets=" ".join(config["datasets"]),
    log:
        "logs/table.log",
    shell:
        # printed too: the measured numbers beside the uniform-noise reference and the papers
        "python -m ebmbench table {input.metrics} --datasets {params.datasets} --out {output.table} "
        "--orderings {output.orderings} 2>&1 | tee {log}"
