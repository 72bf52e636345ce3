rule prepare:
    output:
        info="resources/data/{dataset}/info.json",
        train="resources/data/{dataset}/train.npy",
        test="resources/data/{dataset}/test.npy",
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        **(LIGHT | {"mem_mb": 16000}),  # CelebA: 200k images decoded and resized in memory
    params:
        spec=lambda w: json.dumps(config["dataset_options"][w.dataset]),
        root=config["data_root"],
        out=run_dir,
    shell:
        "python -m ebmbench prepare --dataset {wildcards.dataset} --spec {params.spec:q} "
        "--data-root {params.root:q} --out {params.out} > {log} 2>&1"


rule digits_classifier:
    input:
        "resources/data/digits/info.json",
    output:
        "resources/digits_classifier.pt",
    log:
        "logs/digits_classifier.log",
    conda:
        "../envs/cpu.yaml"
    threads: config["threads"]
    resources:
        **LIGHT,
    params:
        data=lambda w, input: os.path.dirname(input[0]),
    shell:
        "python -m ebmbench classifier --data {params.data} --out {output} --threads {threads} > {log} 2>&1"
