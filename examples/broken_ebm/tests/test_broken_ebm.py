"""This package is broken on purpose: the contract must name the network that never moves."""

from ebmbench.contract import check_method, format_results


def test_broken_ebm_fails_the_contract_on_its_frozen_network():
    results = {r.check: r for r in check_method("broken_ebm")}
    moved = results["one step moves every network"]
    assert not moved.passed and "['g']" in moved.detail, format_results("broken_ebm", list(results.values()))
    assert all(r.passed for name, r in results.items() if name != "one step moves every network")
