"""What one command of the command line is: a name, arguments, checks, and the work."""

import argparse


class Command:
    """Subclasses set `name`, give their one-line help as the docstring, and define the three steps."""

    name: str

    @staticmethod
    def arguments(p: argparse.ArgumentParser) -> None:
        """Declare the command's options."""

    @staticmethod
    def check(a: argparse.Namespace) -> None:
        """Everything that can be known before work starts, with the loaders the work itself uses;
        may attach parsed values to `a` (e.g. `a.overrides`) for `run`."""

    @staticmethod
    def run(a: argparse.Namespace) -> int | None:
        """The work; returns the exit status (None: 0)."""
        raise NotImplementedError


def set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)
