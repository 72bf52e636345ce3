rule prepare:
    output:
        info=DATA + "/info.json",
        train=DATA + "/train.npy",
        test=DATA + "/test.npy",
    params:
        spec=lambda w: shlex.quote(json.dumps(config["dataset_options"][w.dataset])),
        root=config["data_root"],
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "python -m ebmbench prepare --dataset {wildcards.dataset} --spec {params.spec} "
        "--data-root {params.root} --out resources/data/{wildcards.dataset} > {log} 2>&1"


rule digits_classifier:
    input:
        "resources/data/digits/info.json",
    output:
        CLASSIFIER,
    threads: config.get("threads", 2)
    log:
        "logs/digits_classifier.log",
    shell:
        "python -m ebmbench classifier --data resources/data/digits --out {output} --threads {threads} > {log} 2>&1"
