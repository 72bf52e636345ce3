"""ebmbench: train published energy-based generative models, score them with one metric code, and
compare the measured numbers with the papers'."""

from importlib import metadata
from pathlib import Path


def _version() -> str:
    try:
        return metadata.version("ebmbench")
    except metadata.PackageNotFoundError:  # not installed: a method image runs the sources from /opt/ebmbench
        import tomllib

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()
