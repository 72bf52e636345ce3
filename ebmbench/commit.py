"""Multi-file outputs committed whole, and the fault-injection point the kill tests drive.

A stage whose output is several files (a prepared dataset, a run's samples and figures, a score's
metrics and features, the table's pages) writes them all to temporary siblings first. When every
one is complete it writes a journal naming each (temporary, target) pair and the targets the new
set lacks, and only then renames them into place. A kill before the journal leaves the old set
untouched (the temporaries are swept by the next writer); a kill after it leaves a journal, which
the next writer completes before anything else (`roll_forward`) and every reader refuses
(`refuse_unfinished`): no reader ever takes one file of the new set beside the old others, and
nothing is deleted before its replacement is ready.

EBMBENCH_FAULT=<stage>:<instant> kills the process (SIGKILL, as the OOM killer or a cluster's
pre-emption would) at that named instant of a commit: `written` (all outputs in their temporaries,
no journal), `journal` (journal written, nothing moved), `half` (the first output moved). The
kill tests (tests/test_stage_contracts.py) drive every command through each.
"""

import contextlib
import os
import secrets
import shutil
import signal
from pathlib import Path

from .io import SuiteError, os_fault, read_json, write_json

JOURNAL = ".commit.json"  # the suffix of every journal; a folder holding one is mid-commit
INSTANTS = ("written", "journal", "half")


def fault(stage: str, instant: str) -> None:
    """The one fault-injection point: kill this process here if EBMBENCH_FAULT names this instant."""
    if os.environ.get("EBMBENCH_FAULT") == f"{stage}:{instant}":
        os.kill(os.getpid(), signal.SIGKILL)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _put(tmp: Path, target: Path) -> None:
    """Move one complete output into place; a folder in the way goes aside first (rename cannot
    replace a non-empty folder) and is deleted only once the new one stands where it stood."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".old-{secrets.token_hex(4)}.{target.name}")
        os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)


def roll_forward(journal: Path) -> None:
    """Complete a commit a kill interrupted after its journal: its new set is whole, so finish it."""
    if not journal.exists():
        return
    rec, base = read_json(journal), journal.parent
    try:
        for target in rec["remove"]:  # first: none of them is a target of a move
            _remove(base / target)
        for i, (tmp, target) in enumerate(rec["moves"]):
            if (base / tmp).exists():  # else moved before the kill
                _put(base / tmp, base / target)
            if i == 0:
                fault(rec["stage"], "half")
        for tmp in rec.get("staging", []):
            with contextlib.suppress(OSError):
                (base / tmp).rmdir()
        journal.unlink()
    except OSError as err:
        raise os_fault(err, journal, "complete the commit of") from None


def _sweep(targets) -> None:
    """Temporaries of a commit killed before its journal: never part of any set, so removed."""
    for t in targets:
        for p in t.parent.glob(f".new-*.{t.name}"):
            _remove(p)
        for p in t.parent.glob(f".old-*.{t.name}"):
            _remove(p)


def _commit(stage: str, journal: Path, moves: dict, remove: list, staging=()) -> None:
    fault(stage, "written")
    rel = lambda p: os.path.relpath(p, journal.parent)  # noqa: E731 -- the set moves with its folder
    write_json(
        journal,
        {
            "stage": stage,
            "moves": [[rel(tmp), rel(t)] for tmp, t in moves.items()],
            "remove": [rel(t) for t in remove],
            "staging": [rel(s) for s in staging],
        },
    )
    fault(stage, "journal")
    roll_forward(journal)


@contextlib.contextmanager
def committed_files(stage: str, targets):
    """Yield {target: temporary sibling path} for outputs anywhere (files or folders); the block
    writes each at its temporary path. On success all are committed as one set; a target the block
    did not write is removed (no output of an earlier run stays beside the new ones). The journal
    lies beside the first target."""
    targets = [Path(t) for t in targets]
    journal = targets[0].with_name(f".{targets[0].name}{JOURNAL}")
    roll_forward(journal)
    _sweep(targets)
    token = secrets.token_hex(4)
    tmps = {t: t.with_name(f".new-{token}.{t.name}") for t in targets}  # the suffix kept: writers infer formats from it
    try:
        yield tmps
        written = {tmp: t for t, tmp in tmps.items() if tmp.exists()}
        _commit(stage, journal, written, [t for t, tmp in tmps.items() if tmp not in written])
    except OSError as err:
        raise os_fault(err, targets[0]) from None
    finally:
        if not journal.exists():  # a failed block: the old set stays as it was
            for tmp in tmps.values():
                with contextlib.suppress(OSError):
                    _remove(tmp)


@contextlib.contextmanager
def committed_folder(stage: str, folder, names):
    """Yield a fresh staging folder inside `folder`; the block writes its outputs there. On success
    everything it wrote is committed into `folder` as one set, and each of `names` it did not
    write is removed (e.g. a metrics.json of the samples being replaced)."""
    folder = Path(folder)
    journal = folder / f".{stage}{JOURNAL}"
    roll_forward(journal)
    _sweep([folder / "staging"])
    staging = folder / f".new-{secrets.token_hex(4)}.staging"
    try:
        staging.mkdir(parents=True)
        yield staging
        made = sorted(p.name for p in staging.iterdir())
        moves = {staging / n: folder / n for n in made}
        _commit(stage, journal, moves, [folder / n for n in names if n not in made], [staging])
    except OSError as err:
        raise os_fault(err, folder) from None
    finally:
        if not journal.exists():
            with contextlib.suppress(OSError):
                _remove(staging)


def refuse_unfinished(path, rerun: str, unrelated=()) -> None:
    """A reader's check: the folder of `path` (or `path` itself, a folder) must not be mid-commit;
    `unrelated`: stages whose commits do not touch what this reader reads (a score beside samples)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    for journal in sorted(folder.glob(f".*{JOURNAL}")):
        if read_json(journal).get("stage") in unrelated:
            continue
        raise SuiteError(
            f"{folder} is mid-commit: a write was killed while putting its new files in place "
            f"(journal {journal.name}), so the folder holds a mixture of two runs' files. Rerun {rerun}: "
            f"it completes the interrupted commit first."
        )
