"""The command line: `ebmbench <command>`, one table of commands, each defined once.

Every workflow step is one of these commands, so each runs by hand, in a test, or in a container
exactly as Snakemake runs it. A command is a `Command` subclass in one of the wing modules
(`training`, `evaluation`, `containers`, `methods`): its name, its one-line help (the docstring), its
arguments, the checks that run before any work starts (so a mistake costs seconds and nothing is
written before it is found), and the work itself. Errors the user can fix print one paragraph and
no traceback.
"""

import argparse
import sys

from .. import __version__
from ..io import SuiteError, os_fault
from .command import Command
from .containers import COMMANDS as CONTAINER_COMMANDS
from .evaluation import COMMANDS as EVALUATION_COMMANDS
from .methods import COMMANDS as METHOD_COMMANDS
from .training import COMMANDS as TRAINING_COMMANDS


def command_table() -> dict[str, type[Command]]:
    """name -> command, in the order `--help` lists them; a name defined twice is a bug here."""
    table: dict[str, type[Command]] = {}
    for cmd in (*TRAINING_COMMANDS, *EVALUATION_COMMANDS, *CONTAINER_COMMANDS, *METHOD_COMMANDS):
        if cmd.name in table:
            raise RuntimeError(f"command '{cmd.name}' is defined twice ({table[cmd.name].__name__}, {cmd.__name__})")
        table[cmd.name] = cmd
    return table


def parser(table: dict[str, type[Command]]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ebmbench",
        description="Train published energy-based generative models, score them with one metric code, "
        "and compare the measured numbers with the papers'.",
    )
    p.add_argument("--version", action="version", version=f"ebmbench {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name, cmd in table.items():
        help_line = cmd.__doc__.strip().splitlines()[0]
        cmd.arguments(sub.add_parser(name, help=help_line, description=help_line))
    return p


def main(argv=None) -> int:
    table = command_table()
    a = parser(table).parse_args(argv)
    cmd = table[a.cmd]
    from ..divergence import DivergenceError  # here, not at the top: `ebmbench --help` does not import torch

    try:
        cmd.check(a)  # every input and output is checked before any work starts
        return cmd.run(a) or 0
    except DivergenceError as err:
        print(f"ebmbench {a.cmd}: diverged: {err}", file=sys.stderr)
        return 0 if getattr(a, "allow_divergence", False) else 3
    except SuiteError as err:
        print(f"ebmbench {a.cmd}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ebmbench params | head`: the reader has what it wanted; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at the exit flush
        return 0
    except OSError as err:  # a fault no check could foresee (disk failing mid-run, a download): still one paragraph
        print(f"ebmbench {a.cmd}: error: {os_fault(err, action='read or write')}", file=sys.stderr)
        return 2
