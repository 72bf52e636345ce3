"""The paper-number data file: the shipped rows against their papers, and bad rows named on load."""

import csv
import re

import pytest

from ebmbench.evaluate.paper_numbers import FIELDS, PATH, load
from ebmbench.io import SuiteError

GOOD = {
    "method": "Ours",
    "suite_id": "latent_ebm",
    "dataset": "svhn",
    "metric": "fid",
    "value": "29.44",
    "source": "Pang et al. 2020 Table 1",
    "protocol": "TF Inception FID, 50,000 generated vs the whole train split as reference; trained on it, no flips",
    "n_generated": "50000",
    "verified": "true",
    "tolerance": "0.1",
    "allowance": "0.1",
    "allowance_reason": "TF vs torch-fidelity Inception",
}


def write(path, *rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def test_a_good_row_loads_with_its_types(tmp_path):
    (p,) = load(write(tmp_path / "p.csv", GOOD))
    assert (p.value, p.n_generated, p.verified, p.allowance, p.suite_id) == (29.44, 50000, True, 0.1, "latent_ebm")
    (q,) = load(write(tmp_path / "q.csv", GOOD | {"suite_id": "", "n_generated": "", "verified": "false"}))
    assert (q.suite_id, q.n_generated, q.verified) == (None, None, False)


@pytest.mark.parametrize(
    "field,value,says",
    [
        ("value", "29,44", "not a number"),
        ("metric", "FID", "must be one of"),
        ("suite_id", "latent_ebn", "not a method of this suite"),
        ("verified", "yes", "true or false"),
        ("n_generated", "50k", "positive whole number"),
        ("allowance", "-0.1", ">= 0"),
        ("allowance_reason", "", "needs its reason"),
        ("source", "", "empty"),
    ],
)
def test_a_bad_row_is_named_with_its_line_and_column(tmp_path, field, value, says):
    path = write(tmp_path / "p.csv", GOOD | {"dataset": "cifar10"}, GOOD | {field: value})
    with pytest.raises(SuiteError) as err:
        load(path)
    assert "line 3" in str(err.value) and f"'{field}'" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(
    "row,says",
    [
        (
            {"protocol": "TF Inception FID, 50,000 generated"},
            "training data (split or subset), flips, FID reference set",
        ),
        ({"dataset": "celeba64"}, "its paper's crop"),
        ({"metric": "mse", "protocol": "per-pixel MSE of test images"}, "pixel scale"),
        ({"metric": "is", "protocol": "IS of 50,000 generated, trained on the train split"}, "its paper's flips"),
    ],
)
def test_a_compared_number_must_state_each_part_of_its_data_protocol(tmp_path, row, says):
    with pytest.raises(SuiteError, match=f"'protocol'.*{re.escape(says)}"):
        load(write(tmp_path / "p.csv", GOOD | row))
    (p,) = load(write(tmp_path / "q.csv", GOOD | row | {"suite_id": ""}))  # a paper-only row: as printed
    assert p.suite_id is None


def test_a_duplicate_cell_and_a_wrong_header_are_refused(tmp_path):
    with pytest.raises(SuiteError, match="line 3.*same cell as line 2"):
        load(write(tmp_path / "p.csv", GOOD, GOOD | {"value": "30"}))
    (tmp_path / "h.csv").write_text("method,value\nOurs,1\n")
    with pytest.raises(SuiteError, match="header"):
        load(tmp_path / "h.csv")


# -- the shipped file (the numbers moved here from the method files' PAPER lists) -------------------


def test_the_shipped_file_is_what_the_table_compares_with():
    from ebmbench.evaluate.table import all_paper_numbers

    shipped = load()
    assert PATH.name == "paper_numbers.csv" and all_paper_numbers() == shipped and len(shipped) >= 90
    assert all(p.allowance_reason for p in shipped if p.allowance > 0)
    ours = {
        (p.dataset, p.metric): p
        for p in shipped
        if p.source == "Cui & Han 2023 (NeurIPS) Table 1" and p.method == "Ours"
    }
    assert {k: p.value for k, p in ours.items()} == {
        ("cifar10", "is"): 8.55,
        ("cifar10", "fid"): 9.26,
        ("celeba64", "fid"): 5.15,
    }
    assert ours[("cifar10", "fid")].n_generated == 50000  # FID compared at the paper's own N


def test_each_compared_number_records_its_papers_own_data_protocol():
    """The protocols config/paper.yaml follows, per paper: Dual-MCMC's box, flips and whole split;
    Pang et al.'s CelebA on SRI's 40k centre-cropped subset (its own reference, <= 40k generated);
    short-run's 40k training subsets and 40k generated."""
    rows = load()
    dual = next(
        p
        for p in rows
        if (p.source, p.method, p.dataset, p.metric) == ("Cui & Han 2023 (NeurIPS) Table 1", "Ours", "celeba64", "fid")
    )
    assert (
        "(15, 40, 163, 188)" in dual.protocol
        and "random horizontal flips" in dual.protocol
        and dual.n_generated == 50000
    )
    pang = [p for p in rows if p.source == "Pang et al. 2020 Table 1" and p.dataset == "celeba64" and p.metric == "fid"]
    assert len(pang) == 6 and all(
        p.n_generated == 40000
        and "SRI's 40,000-image subset" in p.protocol
        and "CenterCrop(64)" in p.protocol
        and "the subset itself is the FID reference" in p.protocol
        for p in pang
    )
    pang_svhn = next(
        p
        for p in rows
        if (p.source, p.method, p.dataset, p.metric) == ("Pang et al. 2020 Table 1", "Ours", "svhn", "fid")
    )
    assert pang_svhn.n_generated == 50000 and "whole training set as reference" in pang_svhn.protocol
    short = [p for p in rows if p.suite_id == "short_run"]
    assert len(short) == 5 and all(
        "40,000-image subset" in p.protocol and "40,000 generated" in p.protocol for p in short
    )
    assert all("crop not stated (UNVERIFIED" in p.protocol for p in short if p.dataset == "celeba64")
