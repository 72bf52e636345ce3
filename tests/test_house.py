"""The shape of the package, as specifications: no import cycle, one job per file (a docstring and
at most 300 lines), no private name imported across files, and every command defined in one place."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ebmbench"
MAX_LINES = 300


def modules() -> dict[str, Path]:
    """ebmbench's module names -> files; methods/ installs as ebmbench.methods."""
    found = {}
    for base, prefix in ((PACKAGE, "ebmbench"), (ROOT / "methods", "ebmbench.methods")):
        for f in sorted(base.rglob("*.py")):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = f
    return found


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """Every ebmbench module `name` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from pkg import mod` imports the submodule when there is one, else a name of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import ebmbench.x.y` also imports ebmbench.x
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m) :] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}  # a package's own parents
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_import_walk_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "ebmbench"
    (pkg / "evaluate").mkdir(parents=True)
    f = pkg / "evaluate" / "table.py"
    f.write_text("from ..io import x\ndef g():\n    from .gate import y\n")
    known = {"ebmbench.io": None, "ebmbench.evaluate.gate": None, "ebmbench.evaluate.table": f}
    assert imports_of("ebmbench.evaluate.table", f, known) == {"ebmbench.io", "ebmbench.evaluate.gate"}


@pytest.mark.parametrize("name", sorted(n for n, f in modules().items() if f.is_relative_to(PACKAGE)))
def test_each_file_has_one_job(name):
    path = modules()[name]
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no opening docstring naming its job"
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{path.relative_to(ROOT)} is over {MAX_LINES} lines"


def test_no_private_name_is_imported_across_files():
    offenders = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("ebmbench")):
                offenders += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert not [o for o in offenders if not o.endswith("__version__")], offenders


def test_each_command_is_defined_once():
    """One class per command (its name, arguments, checks and work); no other parser and no
    dispatch on the command's name anywhere in the package."""
    from ebmbench.cli import command_table, parser
    from ebmbench.cli.command import Command

    table = command_table()
    names = [c.name for c in Command.__subclasses__()]
    assert sorted(names) == sorted(set(names)) == sorted(table), names
    sub = next(a for a in parser(table)._actions if a.dest == "cmd")
    assert list(sub.choices) == list(table)
    assert {"train", "score", "table", "comparison", "container"} <= set(table)
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        where = path.relative_to(ROOT)
        if where != Path("ebmbench/cli/__init__.py"):
            assert "ArgumentParser(" not in text, f"{where} builds its own command line"
        assert "a.cmd ==" not in text, f"{where} dispatches on the command's name"
    defined = [
        node.value.value
        for path in (PACKAGE / "cli").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["name"]
    ]
    assert sorted(defined) == sorted(table), "a command name is assigned outside its one class, or twice"


def test_every_command_has_help_and_runs_help(capsys):
    from ebmbench.cli import command_table, main

    for name, cmd in command_table().items():
        assert cmd.__doc__ and cmd.__doc__.strip(), name
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert name in capsys.readouterr().out
