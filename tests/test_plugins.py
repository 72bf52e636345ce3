"""Plug-in methods: registered from outside the package, refused clearly when they clash or break,
judged by the same contract as the built-ins, written by `ebmbench new-method`."""

import importlib.metadata
from pathlib import Path

import pytest

from ebmbench import registry
from ebmbench.cli import main
from ebmbench.contract import check_method
from ebmbench.io import SuiteError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def plugins(monkeypatch):
    """Register plug-ins for one test through EBMBENCH_PLUGINS (as a method's image does), with the
    examples' packages importable; the registry is rebuilt before and after."""

    def register(spec: str):
        monkeypatch.setenv(registry.IMAGE_PLUGINS, spec)
        registry.registry.cache_clear()

    monkeypatch.syspath_prepend(str(EXAMPLES / "example_ebm"))
    monkeypatch.syspath_prepend(str(EXAMPLES / "broken_ebm"))
    yield register
    monkeypatch.delenv(registry.IMAGE_PLUGINS, raising=False)
    registry.registry.cache_clear()


def test_a_registered_plugin_is_a_method_like_a_builtin(plugins):
    plugins("example_ebm=example_ebm.method:ExampleEbm")
    assert "example_ebm" in registry.method_ids() and "short_run" in registry.method_ids()
    cls = registry.get_method("example_ebm")
    assert cls.__name__ == "ExampleEbm"
    assert registry.resolve_config("example_ebm", "digits").n_iters == 100


def test_a_method_named_directly_as_module_and_class(plugins):
    assert registry.get_method("example_ebm.method:ExampleEbm").__name__ == "ExampleEbm"


def test_a_plugin_that_does_not_import_is_one_paragraph_naming_where_it_came_from(plugins):
    plugins("ghost=no_such_package.method:Ghost")
    with pytest.raises(
        SuiteError,
        match=r"method 'ghost' from EBMBENCH_PLUGINS \(ghost=no_such_package.method:Ghost\) does not import: ModuleNotFoundError",
    ):
        registry.get_method("ghost")


def test_a_plugin_that_names_no_method_class_is_refused(plugins):
    plugins("notamethod=example_ebm.method:Config")
    with pytest.raises(SuiteError, match="not a subclass of ebmbench.method_base.Method"):
        registry.get_method("notamethod")


def test_an_entry_point_clashing_with_a_builtin_names_both(monkeypatch):
    ep = importlib.metadata.EntryPoint("short_run", "my_ebm.method:Mine", registry.GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [ep] if group == registry.GROUP else [])
    registry.registry.cache_clear()
    try:
        with pytest.raises(SuiteError) as err:
            registry.method_ids()
    finally:
        monkeypatch.undo()
        registry.registry.cache_clear()
    text = str(err.value)
    assert "'short_run' is registered twice" in text and "built-in" in text and "my_ebm.method:Mine" in text
    assert "Rename the plug-in's entry point" in text


def test_the_contract_passes_the_example_and_fails_the_broken_plugin_naming_its_network(plugins):
    plugins("example_ebm=example_ebm.method:ExampleEbm;broken_ebm=broken_ebm.method:BrokenEbm")
    assert all(r.passed for r in check_method("example_ebm"))
    failed = [r for r in check_method("broken_ebm") if not r.passed]
    assert [r.check for r in failed] == ["one step moves every network"]
    assert "['g']" in failed[0].detail and "optimiser" in failed[0].remedy


def test_check_method_command_prints_the_table_and_exits_1_on_a_failure(plugins, capsys):
    plugins("broken_ebm=broken_ebm.method:BrokenEbm")
    assert main(["check-method", "broken_ebm"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  one step moves every network" in out and "8 passed, 1 failed" in out
    assert main(["check-method", "no_such_method"]) == 2
    assert "unknown method 'no_such_method'" in capsys.readouterr().err


def test_new_method_writes_a_package_whose_method_keeps_the_contract(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    assert main(["new-method", "mine", "--out", str(out)]) == 0
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "pyproject.toml",
        "README.md",
        "mine/__init__.py",
        "mine/method.py",
        "tests/test_mine.py",
    }
    assert 'mine = "mine.method:Mine"' in (out / "pyproject.toml").read_text()
    monkeypatch.syspath_prepend(str(out))
    results = check_method("mine.method:Mine")
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_the_committed_example_is_what_new_method_writes(tmp_path):
    """examples/example_ebm is the template's output: regenerate it when the template changes."""
    main(["new-method", "example_ebm", "--out", str(tmp_path / "e")])
    for f in (tmp_path / "e").rglob("*"):
        if f.is_file():
            rel = f.relative_to(tmp_path / "e")
            assert (EXAMPLES / "example_ebm" / rel).read_text() == f.read_text(), rel


@pytest.mark.parametrize(
    "args,message",
    [
        (["new-method", "My-EBM", "--out", "x"], "lower-case Python identifier"),
        (["new-method", "short_run", "--out", "x"], "already registered"),
    ],
)
def test_new_method_refuses_bad_names_before_writing(tmp_path, capsys, args, message):
    args = [a if a != "x" else str(tmp_path / "x") for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_new_method_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["new-method", "mine", "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err and (tmp_path / "keep.txt").read_text() == "mine"


def test_a_plugins_paper_numbers_load_with_the_suites_and_only_for_itself(plugins, tmp_path, monkeypatch):
    from ebmbench.evaluate.paper_numbers import FIELDS, PATH, load_all

    plugins("example_ebm=example_ebm.method:ExampleEbm")
    rows = PATH.read_text().splitlines()
    own = tmp_path / "numbers.csv"
    own.write_text(
        "\n".join([rows[0], rows[1].replace(",abp,", ",example_ebm,").replace("ABP,", "Example,", 1)]) + "\n"
    )
    monkeypatch.setattr(registry.get_method("example_ebm"), "PAPER_NUMBERS", own, raising=False)
    assert rows[0].split(",") == FIELDS
    mine = [p for p in load_all() if p.suite_id == "example_ebm"]
    assert len(mine) == 1 and mine[0].method == "Example"
    own.write_text("\n".join([rows[0], rows[1].replace("ABP,", "Example,", 1)]) + "\n")  # names abp: not its own
    with pytest.raises(SuiteError, match="suite_id 'abp' in the paper numbers of plug-in 'example_ebm'"):
        load_all()
