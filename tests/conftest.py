import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """The prepared digits dataset (real data, shipped with scikit-learn)."""
    from ebmbench.data import prepare

    out = tmp_path_factory.mktemp("data") / "digits"
    prepare("digits", {"kind": "digits"}, "unused", out)
    return out


@pytest.fixture(scope="session")
def digits_classifier(digits_dir, tmp_path_factory):
    from ebmbench.evaluate.digits_classifier import train_digits_classifier

    path = tmp_path_factory.mktemp("clf") / "digits_classifier.pt"
    train_digits_classifier(digits_dir, path, epochs=4)
    return path


@pytest.fixture
def workflow_dir(tmp_path):
    """A copy of the workflow files to run Snakemake in (outputs land there, not in the repo)."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "Snakefile", tmp_path)
    for d in ("rules", "config", "report", "envs"):  # envs: the rules name envs/cpu.yaml
        shutil.copytree(root / d, tmp_path / d)
    return tmp_path
