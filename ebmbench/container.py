"""One image per method: a content hash of what goes into it, a build through the `docker` SDK that
happens only when that hash is new, and the `docker run` prefix the workflow puts before the CLI.

The image of method M holds the shared package (ebmbench/), the registry (methods/__init__.py) and
M's own module (plus any other methods module it imports), never the other methods' files: editing
one method rebuilds that method's image only. File times never decide; the hash does.

    ebmbench container wheelhouse --out wheels/                # on a machine with an index
    ebmbench container build --method short_run --wheelhouse wheels/ --out short_run.json
"""

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .io import SuiteError, write_json
from .registry import registry

ROOT = Path(__file__).resolve().parents[1]  # the checkout: Dockerfile, envs/, ebmbench/, methods/
# the CLI checks --spec against the schema; pyproject.toml gives the version recorded in metrics.json
SHARED = ("Dockerfile", "envs/image.txt", "config/schema.yaml", "pyproject.toml")
# The official CUDA PyTorch runtime image whose torch equals envs/image.txt's pin (so pip keeps the
# base's CUDA torch). This default has never been pulled by the tests (they build offline from a
# local base image): docs/containers-and-clusters.md.
DEFAULT_BASE = "pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime"
RECORD_IN_IMAGE = "EBMBENCH_IMAGE_RECORD"  # env var naming the record file mounted into the container


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def method_modules(method: str, root: Path = ROOT) -> list[str]:
    """methods/<file>.py of built-in `method` and every methods module it imports; none for a plug-in
    (its own package travels instead: `plugin_files`)."""
    from ebmbench.methods import METHODS

    if method not in METHODS:
        if method in registry():
            return []
        raise SuiteError(f"unknown method '{method}'; known methods: {', '.join(sorted(registry()))}.")
    todo, seen = [METHODS[method].split(":")[0].split(".")[-1]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((root / "methods" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            if node.module == "ebmbench.methods":  # from ebmbench.methods import latent_ebm
                todo.extend(a.name for a in node.names if (root / "methods" / f"{a.name}.py").is_file())
            elif node.level == 1 or node.module.startswith("ebmbench.methods."):
                todo.append(node.module.split(".")[-1])
    return sorted(f"methods/{n}.py" for n in seen)


def image_files(method: str, root: Path = ROOT) -> list[str]:
    """Repository files copied into the image of `method` (relative paths)."""
    package = sorted(str(p.relative_to(root)) for p in (root / "ebmbench").rglob("*.py"))
    return [*SHARED, *package, "methods/__init__.py", *method_modules(method, root)]


def plugin_files(method: str) -> dict[str, Path]:
    """A plug-in method's package, as build-context paths (plugins/<package>/...) -> its files; the
    image puts plugins/ on PYTHONPATH and registers the method through EBMBENCH_PLUGINS."""
    import importlib.util

    entry = registry().get(method)
    if entry is None or not entry.plugin:
        return {}
    top = entry.target.split(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise SuiteError(f"the package '{top}' of plug-in method '{method}' ({entry.source}) is not importable.")
    if spec.submodule_search_locations:  # a package: every .py file in it
        folder = Path(next(iter(spec.submodule_search_locations)))
        return {f"plugins/{top}/{f.relative_to(folder)}": f for f in sorted(folder.rglob("*.py"))}
    return {f"plugins/{top}.py": Path(spec.origin)}


def image_plugins(method: str) -> str:
    """The EBMBENCH_PLUGINS value the image of `method` needs ("" for a built-in)."""
    entry = registry().get(method)
    return f"{method}={entry.target}" if entry is not None and entry.plugin else ""


def image_inputs(method: str, base_image: str, wheelhouse, extra_ca=None, root: Path = ROOT) -> dict:
    """Everything that decides the image's content: file hashes, the base image, the wheels' names
    and sizes (a wheel's name carries its version; hashing a GB of wheels on every plan is too slow)."""
    files = {rel: _sha(root / rel) for rel in image_files(method, root)}
    files |= {rel: _sha(src) for rel, src in plugin_files(method).items()}
    wheels = {p.name: p.stat().st_size for p in sorted(Path(wheelhouse).glob("*")) if p.is_file()} if wheelhouse else {}
    return {
        "method": method,
        "base_image": base_image,
        "files": files,
        "wheels": wheels,
        "extra_ca": _sha(Path(extra_ca)) if extra_ca else None,
    }


def content_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def image_tag(method: str, digest: str) -> str:
    return f"ebmbench-{method.replace('_', '-')}:{digest[:16]}"


def engine():
    """A docker client that answers, or one paragraph saying how to get one."""
    try:
        import docker
    except ImportError:
        raise SuiteError(
            "container: docker is configured but the `docker` Python package is missing: "
            "pip install -r envs/cpu.txt (it pins docker), or set container: none."
        ) from None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as err:  # the SDK raises several types for a missing/refused socket
        raise SuiteError(
            f"container: docker is configured but no Docker engine answers ({err.__class__.__name__}: "
            f"{str(err)[:200]}). Start one (as root: `dockerd &`, or `systemctl start docker`), make "
            f"sure DOCKER_HOST or /var/run/docker.sock points at it and this user may use it, or set "
            f"container: none to run locally."
        ) from None
    return client


def stage_context(method: str, wheelhouse, extra_ca, root: Path, ctx: Path) -> None:
    """The build context: the image's files only (hard links where possible; wheels can be a GB)."""
    sources = {rel: root / rel for rel in image_files(method, root)} | plugin_files(method)
    (ctx / "plugins").mkdir(exist_ok=True)  # the Dockerfile copies it, empty for a built-in
    for rel, src in sources.items():
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, ctx / rel)
    (ctx / "wheels").mkdir()
    for p in Path(wheelhouse).glob("*"):
        try:
            os.link(p, ctx / "wheels" / p.name)
        except OSError:
            shutil.copy2(p, ctx / "wheels" / p.name)
    (ctx / "certs").mkdir()
    if extra_ca:
        shutil.copy2(extra_ca, ctx / "certs" / "extra-ca.pem")


def git_state(root: Path = ROOT) -> dict:
    """Commit of the checkout and whether it had uncommitted changes; null outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def build_image(method: str, out, wheelhouse, base_image: str = DEFAULT_BASE, extra_ca=None, root: Path = ROOT) -> dict:
    """Build method's image unless an image with its content-hash tag exists; write the record."""
    if not wheelhouse or not Path(wheelhouse).is_dir() or not any(Path(wheelhouse).iterdir()):
        raise SuiteError(
            f"the wheelhouse '{wheelhouse}' is missing or empty: the image builds offline from it. Make it "
            f"with `ebmbench container wheelhouse --out {wheelhouse}` on a machine that reaches "
            f"a package index (for the image's Python version), then rerun."
        )
    inputs = image_inputs(method, base_image, wheelhouse, extra_ca, root)
    digest = content_hash(inputs)
    tag = image_tag(method, digest)
    client = engine()
    import docker

    t0 = time.time()
    try:
        image, built = client.images.get(tag), False
    except docker.errors.ImageNotFound:
        with tempfile.TemporaryDirectory(prefix="ebmbench-ctx-") as ctx:
            stage_context(method, wheelhouse, extra_ca, root, Path(ctx))
            git = git_state(root)
            args = {
                "METHOD": method,
                "PLUGINS": image_plugins(method),
                "BASE_IMAGE": base_image,
                "IMAGE_TAG": tag,
                "GIT_COMMIT": git["git_commit"] or "",
                "GIT_DIRTY": str(git["git_dirty"]).lower(),
            }
            if extra_ca:
                args["EXTRA_CA"] = "certs/extra-ca.pem"
            try:
                image, _ = client.images.build(
                    path=ctx, tag=tag, buildargs=args, rm=True, forcerm=True, network_mode="none"
                )
            except docker.errors.BuildError as err:
                tail = "".join(c.get("stream", "") for c in err.build_log)[-1500:]
                raise SuiteError(
                    f"building the image of '{method}' failed: {err.msg}. Last build output:\n{tail}"
                ) from None
        built = True
    record = {
        "method": method,
        "tag": tag,
        "image_id": image.id,
        "content_hash": digest,
        "built": built,
        "build_seconds": round(time.time() - t0, 1) if built else 0.0,
        **git_state(root),
        "inputs": inputs,
    }
    write_json(out, record)
    return record


# Variables that choose the numeric libraries' kernels and thread counts (Snakemake sets the thread
# counts for a job). A container starts without the host's environment; passed by name (`-e NAME`,
# only where the host sets it), they make the image compute what the host would: with another
# OpenBLAS kernel choice, np.cov of the same features can differ in the last bits
# (test_workflow_in_container_equals_local checks the numbers agree).
NUMERIC_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_CBWR",
    "GOTO_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def run_prefix(tag: str, record_path, run_dir: str, cuda: bool, extra_ro=()) -> str:
    """`docker run ...` that replaces `python -m ebmbench` in a rule's shell command.

    The container reaches no network, sees resources/ read-only and writes only into run_dir (and the
    torch-fidelity cache), as the calling user, so outputs belong to whoever runs the workflow; it
    gets the host's NUMERIC_ENV.
    Paths keep their host names (mounted at $PWD/...) so the rule's relative paths work unchanged.
    """
    mounts = [
        '-v "$PWD/resources:$PWD/resources:ro"',
        f'-v "$PWD/{run_dir}:$PWD/{run_dir}"',
        '-v "$PWD/resources/fidelity-cache:$PWD/resources/fidelity-cache"',
    ]
    mounts += [f'-v "{p}:{p}:ro"' for p in extra_ro]
    gpus = "--gpus all " if cuda else ""
    return (
        f'mkdir -p resources/fidelity-cache && docker run --rm --network none {gpus}--user "$(id -u):$(id -g)" '
        f'{" ".join(mounts)} -w "$PWD" {" ".join(f"-e {v}" for v in NUMERIC_ENV)} '
        f'-e {RECORD_IN_IMAGE}="$PWD/{record_path}" {tag}'
    )


def make_wheelhouse(out, requirements=ROOT / "envs" / "image.txt") -> None:
    """pip download of the image's pins (and their dependencies) for an offline build."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-r", str(requirements), "-d", str(out)], check=True)
