# One image per method, built only when the content hash of its inputs is new (ebmbench/container.py).
# No file inputs on purpose: the digest param is what reruns this rule, so touching a file without
# changing it rebuilds nothing, and a changed file always does.
localrules:
    image,


rule image:
    output:
        "resources/images/{method}.json",
    log:
        "logs/image/{method}.log",
    conda:
        "../envs/cpu.yaml"
    resources:
        **LIGHT,
    params:
        digest=lambda w: image_digest(w.method),
        base=config["image"]["base_image"],
        wheelhouse=config["image"]["wheelhouse"],
        ca=extra_ca_args,
    shell:
        "python -m ebmbench container build --method {wildcards.method} --base-image {params.base:q} "
        "--wheelhouse {params.wheelhouse:q} {params.ca:q} --out {output} > {log} 2>&1"
