"""The contract ebmbench's own methods pass, on this method."""

from ebmbench.contract import check_method, format_results


def test_example_ebm_keeps_the_method_contract():
    results = check_method("example_ebm")
    assert all(r.passed for r in results), format_results("example_ebm", results)
