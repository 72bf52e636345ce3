# One image per method, built only when the content hash of its inputs is new (ebmbench/container.py).
# No file inputs on purpose: the digest param is what reruns this rule, so touching a file without
# changing it rebuilds nothing, and a changed file always does.
localrules: image


rule image:
    output:
        IMAGE,
    params:
        digest=lambda w: image_digest(w.method),
        base=config.get("image", {}).get("base_image", DEFAULT_BASE),
        wheelhouse=config.get("image", {}).get("wheelhouse", "wheels"),
        ca=f"--extra-ca {config['image']['extra_ca']}" if config.get("image", {}).get("extra_ca") else "",
    log:
        "logs/image/{method}.log",
    shell:
        "python -m ebmbench.container build --method {wildcards.method} --base-image {params.base} "
        "--wheelhouse {params.wheelhouse} {params.ca} --out {output} > {log} 2>&1"
