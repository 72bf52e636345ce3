"""Per-method images: the content hash (always), and a real Docker engine (as root on Linux): a
debootstrap'ed Debian base, offline builds from a wheelhouse, the workflow's train/sample/score in
the image, equal to a local run."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from ebmbench import container
from ebmbench.io import SuiteError

ROOT = Path(__file__).resolve().parents[1]
BASE = "ebmbench-test-base:bookworm-py311"  # Debian 12's python3 is 3.11, as on the host: same wheels
TINY = """
methods: [short_run]
n_samples: 64
n_recon: 16
threads: 1
overrides:
  short_run:
    digits: {n_iters: 6, checkpoint_every: 3, recon_iters: 3, interp_points: 3}
"""
# The same run by hand (what the workflow's train/sample/score rules call).
TRAIN = [
    "--method",
    "short_run",
    "--data",
    "resources/data/digits",
    "--seed",
    "0",
    "--preset",
    "digits",
    "--set",
    "n_iters=6",
    "--set",
    "checkpoint_every=3",
    "--set",
    "recon_iters=3",
    "--set",
    "interp_points=3",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--allow-divergence",
]


# ---- helpers shared with test_slurm.py -------------------------------------------------------------
def integration_skip_reason(tool: str) -> str | None:
    """Why a real-engine test cannot run here, or None. It installs from Debian's packages as root."""
    if not sys.platform.startswith("linux"):
        return f"{tool} integration needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"{tool} integration installs and starts daemons as root (running as uid {os.geteuid()})"
    if shutil.which("apt-get") is None and shutil.which(tool) is None:
        return f"{tool} integration needs apt-get to install {tool} (not a Debian-like system)"
    return None


def skip_loudly(reason: str):
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


def say(request, msg: str) -> None:
    """Printed even under pytest's capture: CI shows how long each step took."""
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\n[{Path(request.fspath).stem}] {msg}", flush=True)


def apt_install(*packages: str) -> None:
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:  # stale lists: update once
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(cmd, env=env, check=True, capture_output=True)


def prepared_resources(work: Path, digits_dir, digits_classifier) -> None:
    """The session's digits data and classifier at the workflow's paths: both runs score with the
    same classifier file (its hash names the extractor)."""
    shutil.copytree(digits_dir, work / "resources/data/digits")
    shutil.copy2(digits_classifier, work / "resources/digits_classifier.pt")


def local_run(work: Path, run: str, cache: str) -> dict:
    """train, sample, score of the TINY short_run by hand in this environment."""

    def cli(*args):
        r = subprocess.run([sys.executable, "-m", "ebmbench", *args], cwd=work, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]

    cli("train", *TRAIN, "--out", run, "--no-progress")
    cli(
        "sample",
        "--run",
        run,
        "--out",
        run,
        "--n",
        "64",
        "--n-recon",
        "16",
        "--data",
        "resources/data/digits",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
    )
    cli(
        "score",
        "--samples",
        f"{run}/samples.npz",
        "--data",
        "resources/data/digits",
        "--extractor",
        "digits",
        "--weights",
        "resources/digits_classifier.pt",
        "--cache",
        cache,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--measurements",  # as the workflow's score rule passes short_run's
        f"{run}/measurements.json",
        "--out",
        f"{run}/metrics.json",
    )
    return json.loads((work / run / "metrics.json").read_text())


def numbers(metrics: dict) -> dict:
    """What a run measured: everything but where it came from, where its files lie and how long sampling took."""
    return {k: v for k, v in metrics.items() if k not in ("provenance", "features", "seconds_per_1000")}


# ---- the content hash: no engine needed -------------------------------------------------------------
def _copy_sources(dst: Path) -> Path:
    for rel in container.SHARED:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    for d in ("ebmbench", "methods"):
        shutil.copytree(ROOT / d, dst / d, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_image_holds_its_own_method_file_only():
    assert container.method_modules("latent_ebm_conv") == [
        "methods/latent_ebm.py"
    ]  # registry: latent_ebm:LatentEBMConv
    # `from ebmbench.methods import latent_ebm` pulls latent_ebm (and what it imports) into vae's image
    assert container.method_modules("vae") == ["methods/abp.py", "methods/latent_ebm.py", "methods/vae.py"]
    files = container.image_files("short_run")
    assert "methods/short_run.py" in files and "methods/__init__.py" in files and "ebmbench/langevin.py" in files
    assert not any(f.startswith("methods/") and f not in ("methods/short_run.py", "methods/__init__.py") for f in files)


def test_hash_follows_content_not_file_times(tmp_path):
    src = _copy_sources(tmp_path / "src")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "torch-2.13.0-cp311-none-any.whl").write_bytes(b"x" * 10)

    def digest(method, base="b"):
        return container.content_hash(container.image_inputs(method, base, tmp_path / "wheels", root=src))

    before = {m: digest(m) for m in ("short_run", "latent_ebm", "latent_ebm_conv")}
    os.utime(src / "methods/short_run.py", (1, 1))  # a touch alone changes nothing
    assert {m: digest(m) for m in before} == before
    with open(src / "methods/latent_ebm.py", "a") as f:
        f.write("\n# edited\n")
    after = {m: digest(m) for m in before}
    assert after["short_run"] == before["short_run"]
    assert after["latent_ebm"] != before["latent_ebm"] and after["latent_ebm_conv"] != before["latent_ebm_conv"]
    with open(src / "ebmbench/langevin.py", "a") as f:  # the shared package: every image
        f.write("\n# edited\n")
    assert all(digest(m) != after[m] for m in before)
    assert digest("short_run", base="other") != digest("short_run")  # and the base image


def test_run_prefix_isolates_the_job():
    p = container.run_prefix(
        "ebmbench-short-run:abc", "resources/images/short_run.json", "results/d/m/seed0", cuda=True
    )
    assert "--network none" in p and "--gpus all" in p and '--user "$(id -u):$(id -g)"' in p
    assert '-v "$PWD/resources:$PWD/resources:ro"' in p and '-v "$PWD/results/d/m/seed0:$PWD/results/d/m/seed0"' in p
    assert p.endswith("ebmbench-short-run:abc")
    # the host's choice of BLAS kernels and thread counts travels in by name (set only where the host sets it)
    assert "-e OPENBLAS_CORETYPE " in p and "-e OMP_NUM_THREADS " in p
    assert "--gpus" not in container.run_prefix("t:x", "r.json", "results/x", cuda=False)


def test_no_engine_is_one_clear_paragraph(monkeypatch):
    pytest.importorskip("docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SuiteError, match="no Docker engine answers.*container: none"):
        container.engine()


def test_missing_wheelhouse_stops_the_image_rule(workflow_dir):
    (workflow_dir / "c.yaml").write_text(TINY + "container: docker\nimage: {wheelhouse: nowhere}\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "resources/images/short_run.json",
            "--configfile",
            "c.yaml",
        ],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    log = (workflow_dir / "logs/image/short_run.log").read_text()
    assert r.returncode != 0 and "wheelhouse 'nowhere' is missing or empty" in log


def test_table_carries_the_image_per_row(tmp_path):
    from ebmbench.evaluate.table import build_table
    from ebmbench.io import write_json

    files = []
    for name, image in (("short_run", "ebmbench-short-run:abc"), ("uniform_noise", "local")):
        files.append(tmp_path / f"{name}.json")
        write_json(
            files[-1],
            {
                "method": name,
                "dataset": "digits",
                "seed": 0,
                "status": "ok",
                "fid": 1.0,
                "is": 2.0,
                "is_std": 0.1,
                "kid": 0.1,
                "kid_std": 0.01,
                "n_generated": 10,
                "n_reference": 10,
                "extractor": "x",
                "provenance": {"image": image},
            },
        )
    df = build_table(files, ["digits"])
    assert set(df[df.method == "short_run"].image) == {"ebmbench-short-run:abc"}
    assert set(df[df.method == "uniform_noise"].image) == {"local"}


# ---- a real engine ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(request, tmp_path_factory):
    """A Docker engine (started here if none answers, stopped by its PID), the Debian base image and
    the wheelhouse."""
    reason = integration_skip_reason("dockerd")
    if reason:
        skip_loudly(reason)
    t = time.time()
    if not (shutil.which("dockerd") and shutil.which("docker") and shutil.which("debootstrap")):
        apt_install("docker.io", "debootstrap")
    say(request, f"apt-get install docker.io debootstrap: {time.time() - t:.0f} s")
    daemon = None
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        t = time.time()
        log = open(tmp_path_factory.mktemp("dockerd") / "dockerd.log", "w")
        daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT)
        while subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            assert daemon.poll() is None and time.time() - t < 60, "dockerd did not start (see its log)"
            time.sleep(1)
        say(request, f"dockerd (pid {daemon.pid}) ready: {time.time() - t:.0f} s")
    try:
        if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
            t = time.time()
            rootfs = tmp_path_factory.mktemp("rootfs")
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv",
                    "bookworm",
                    str(rootfs),
                    "http://deb.debian.org/debian",
                ],
                check=True,
                capture_output=True,
            )
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(["docker", "import", "-", BASE], stdin=tar.stdout, check=True, capture_output=True)
            assert tar.wait() == 0
            shutil.rmtree(rootfs)
            say(request, f"base image (debootstrap + docker import): {time.time() - t:.0f} s")
        t = time.time()
        wheels = tmp_path_factory.mktemp("wheels")
        container.make_wheelhouse(wheels)
        say(request, f"wheelhouse (pip download -r envs/image.txt): {time.time() - t:.0f} s")
        yield wheels
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=60)


def test_build_once_per_content(engine, tmp_path, request):
    """Built once; nothing built the second time; an edited method file rebuilds that image only."""
    src = _copy_sources(tmp_path / "src")

    def build(method):
        t = time.time()
        r = container.build_image(method, tmp_path / f"{method}.json", engine, BASE, root=src)
        say(request, f"build {method}: {'built' if r['built'] else 'nothing built'}, {time.time() - t:.0f} s")
        return r

    first = {m: build(m) for m in ("short_run", "latent_ebm")}
    again = {m: build(m) for m in first}
    assert not any(r["built"] for r in again.values())
    assert {m: r["image_id"] for m, r in again.items()} == {m: r["image_id"] for m, r in first.items()}
    # A fresh edit each run: the engine keeps images between runs, and an edit made before would
    # find its image already there (nothing built) and make this check depend on history.
    with open(src / "methods/latent_ebm.py", "a") as f:
        f.write(f"\n# edited {uuid.uuid4().hex}\n")
    edited = {m: build(m) for m in first}
    try:
        assert not edited["short_run"]["built"] and edited["short_run"]["image_id"] == first["short_run"]["image_id"]
        assert edited["latent_ebm"]["built"] and edited["latent_ebm"]["tag"] != first["latent_ebm"]["tag"]
    finally:  # the edited image is of no use to a later run: do not let them pile up
        subprocess.run(["docker", "rmi", "-f", edited["latent_ebm"]["tag"]], capture_output=True)


def test_workflow_in_container_equals_local(engine, workflow_dir, digits_dir, digits_classifier, request):
    """container: docker runs train/sample/score in the image; the numbers equal a local run's to the
    last bit: same pins (envs/image.txt = envs/cpu.txt), same CPU, same seeds, same thread count."""
    work = workflow_dir
    prepared_resources(work, digits_dir, digits_classifier)
    (work / "c.yaml").write_text(TINY + f"container: docker\nimage: {{base_image: '{BASE}', wheelhouse: '{engine}'}}\n")
    t = time.time()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "results/digits/short_run/seed0/metrics.json",
            "--configfile",
            "c.yaml",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    say(request, f"workflow in the container (image + train + sample + score): {time.time() - t:.0f} s")
    record = json.loads((work / "resources/images/short_run.json").read_text())
    in_image = json.loads((work / "results/digits/short_run/seed0/metrics.json").read_text())
    assert in_image["provenance"]["image"] == record["tag"] and in_image["provenance"]["image_id"] == record["image_id"]
    assert (work / "results/digits/short_run/seed0/metrics.json").stat().st_uid == os.getuid()

    t = time.time()
    local = local_run(work, "results/local", "resources/local-cache")  # its own cache: recomputes the reference
    say(request, f"the same run locally: {time.time() - t:.0f} s")
    assert local["provenance"]["image"] == "local"
    assert numbers(in_image) == numbers(local)
    a = np.load(work / "results/digits/short_run/seed0/samples.npz")["images"]
    assert np.array_equal(a, np.load(work / "results/local/samples.npz")["images"])

    # resources/ is read-only inside: a job cannot overwrite the data it reads
    prefix = container.run_prefix(record["tag"], "resources/images/short_run.json", "results/local", cuda=False)
    r = subprocess.run(
        f'{prefix} prepare --dataset digits --spec \'{{"kind": "digits"}}\' --out resources/data/x',
        shell=True,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "read-only" in r.stderr


@pytest.fixture
def example_plugin(monkeypatch):
    """examples/example_ebm registered as a plug-in (by EBMBENCH_PLUGINS, as pip's entry point would)."""
    from ebmbench import registry

    monkeypatch.syspath_prepend(str(ROOT / "examples" / "example_ebm"))
    monkeypatch.setenv(registry.IMAGE_PLUGINS, "example_ebm=example_ebm.method:ExampleEbm")
    registry.registry.cache_clear()
    yield "example_ebm"
    monkeypatch.delenv(registry.IMAGE_PLUGINS)
    registry.registry.cache_clear()


def test_a_plugins_image_holds_its_package_and_registers_it(example_plugin, tmp_path):
    files = container.plugin_files(example_plugin)
    assert set(files) == {"plugins/example_ebm/__init__.py", "plugins/example_ebm/method.py"}
    assert container.image_plugins(example_plugin) == "example_ebm=example_ebm.method:ExampleEbm"
    assert container.method_modules(example_plugin) == []  # none of the built-ins' files
    assert container.plugin_files("short_run") == {} and container.image_plugins("short_run") == ""
    inputs = container.image_inputs(example_plugin, "b", None)
    method_file = files["plugins/example_ebm/method.py"]
    assert inputs["files"]["plugins/example_ebm/method.py"] == hashlib.sha256(method_file.read_bytes()).hexdigest()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "wheels").mkdir()
    container.stage_context(example_plugin, tmp_path / "wheels", None, ROOT, ctx)
    assert (ctx / "plugins/example_ebm/method.py").read_text() == files["plugins/example_ebm/method.py"].read_text()
    assert not any((ctx / "methods").glob("[!_]*.py"))  # no built-in method file in a plug-in's image


def test_a_plugin_runs_in_its_own_image(engine, example_plugin, tmp_path, request):
    """The plug-in's image: its package on PYTHONPATH, its id registered, the contract passing inside."""
    t = time.time()
    r = container.build_image(example_plugin, tmp_path / "example_ebm.json", engine, BASE)
    say(request, f"build example_ebm: {'built' if r['built'] else 'nothing built'}, {time.time() - t:.0f} s")
    t = time.time()
    run = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", r["tag"], "check-method", example_plugin],
        capture_output=True,
        text=True,
    )
    say(request, f"check-method in the image: {time.time() - t:.0f} s")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "9 passed, 0 failed" in run.stdout
