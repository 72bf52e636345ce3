"""The claims ledger against known answers: the verdict of hand-made per-seed records (holds,
reversed, inconclusive, not measured), the interval paired by seed, a bound, one row per model for
`*`, the papers' orderings as claims, and a ledger row naming an unknown metric or method stopping
with its file and line."""

import math

import pandas as pd
import pytest
from scipy import stats

from ebmbench.cli import main
from ebmbench.evaluate.claims import FIELDS, Claim, build_claims, difference, load, printed_orderings, verdict
from ebmbench.io import SuiteError, write_json

T2 = stats.t.ppf(0.975, 2)  # the t quantile of three seeds


def rec(method, seed, dataset="digits", status="ok", **metrics):
    return {"method": method, "dataset": dataset, "seed": seed, "status": status, **metrics}


def claim(method_a="coop_vae_ebm", method_b="coop_vae_ebm@vae_proposal", metric="fid", claimed="<", **kw):
    return Claim("c", "words", "a paper", method_a, metric, claimed, method_b, kw.pop("metric_b", metric), **kw)


def one(records, c) -> dict:
    df = build_claims(records, claims=[c], paper=[])  # no paper numbers: the ledger's own claim alone
    assert len(df) == 1
    return df.iloc[0].to_dict()


def pair(a_values, b_values, a="coop_vae_ebm", b="coop_vae_ebm@vae_proposal", metric="fid"):
    return [rec(a, s, **{metric: v}) for s, v in a_values.items()] + [
        rec(b, s, **{metric: v}) for s, v in b_values.items()
    ]


def test_verdict_holds_reversed_inconclusive():
    a = {0: 1.0, 1: 2.0, 2: 3.0}
    holds = one(pair(a, {s: v + 0.5 for s, v in a.items()}), claim())
    assert holds["verdict"] == "holds" and holds["difference"] == pytest.approx(-0.5) and holds["n_seeds"] == 3
    assert (holds["mean_a"], holds["mean_b"]) == (pytest.approx(2.0), pytest.approx(2.5))
    assert holds["lo"] == holds["hi"] == pytest.approx(-0.5)  # the same difference on every seed: no spread
    assert one(pair(a, {s: v - 0.5 for s, v in a.items()}), claim())["verdict"] == "reversed"
    # a higher-is-better claim reads the same difference the other way
    assert one(pair(a, {s: v - 0.5 for s, v in a.items()}), claim(claimed=">"))["verdict"] == "holds"
    mixed = one(pair(a, {0: 1.5, 1: 1.5, 2: 3.5}), claim())  # differences -0.5, +0.5, -0.5
    assert mixed["verdict"] == "inconclusive" and mixed["lo"] < 0 < mixed["hi"]
    assert verdict("<", -2.0, -1.0) == "holds" and verdict("<", 1.0, 2.0) == "reversed"
    assert verdict(">", -0.1, 0.1) == "inconclusive" and verdict("<", -1.0, 0.0) == "inconclusive"


def test_the_interval_pairs_by_seed_not_by_order():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 9.0}  # seed 3 has no partner: left out
    b = {2: 3.11, 0: 1.10, 1: 2.12}  # listed out of order: matched by seed
    row = one(pair(a, b), claim())
    half = T2 * 0.01 / math.sqrt(3)  # differences -0.10, -0.12, -0.11: mean -0.11, sd 0.01
    assert row["n_seeds"] == 3 and row["difference"] == pytest.approx(-0.11)
    assert (row["lo"], row["hi"]) == (pytest.approx(-0.11 - half), pytest.approx(-0.11 + half))
    assert row["verdict"] == "holds" and "paired" in row["interval"]
    assert row["mean_a"] == pytest.approx(2.0)  # over the shared seeds, so mean_a - mean_b is the difference
    # the same values on seeds the sides do not share: the seed-to-seed spread swamps the gap
    unpaired = difference({0: 1.0, 1: 2.0, 2: 3.0}, {3: 1.1, 4: 2.12, 5: 3.11})
    assert "Welch" in unpaired["interval"] and unpaired["lo"] < 0 < unpaired["hi"]
    sa = sb = 1.0 / 3  # both variances ~1 over 3 seeds
    assert unpaired["hi"] - unpaired["difference"] == pytest.approx(stats.t.ppf(0.975, 4) * math.sqrt(sa + sb), 1e-2)


def test_one_seed_gives_no_interval_and_a_bound_is_one_sided():
    row = one(pair({0: 1.0}, {0: 5.0}), claim())
    assert row["verdict"] == "inconclusive" and row["n_seeds"] == 1 and "no interval" in row["interval"]
    values = [rec("vae", s, memorised=v) for s, v in enumerate((0.01, 0.02, 0.03))]
    bound = Claim("m", "words", "a paper", "*", "memorised", "<", None, "memorised", bound=0.05)
    got = one(values, bound)
    half = T2 * 0.01 / math.sqrt(3)
    assert (got["method_a"], got["mean_b"], got["difference"]) == ("vae", 0.05, pytest.approx(-0.03))
    assert got["hi"] == pytest.approx(-0.03 + half) and got["verdict"] == "holds"


def test_every_model_gets_its_row_and_a_missing_side_is_not_measured():
    runs = [rec(m, 0, memorised=0.01) for m in ("vae", "abp", "coop_vae_ebm@x0", "uniform_noise")]
    bound = Claim("m", "words", "a paper", "*", "memorised", "<", None, "memorised", bound=0.05)
    df = build_claims(runs, claims=[bound], paper=[])
    assert list(df["method_a"]) == ["abp", "vae"]  # models only: no variant, no uniform noise
    runs = [rec("coop_vae_ebm", s, fid=1.0, kid=None, kid_unavailable="too few images") for s in (0, 1)]
    runs += [rec("coop_vae_ebm@vae_proposal", 0, fid=2.0), rec("coop_vae_ebm@vae_proposal", 1, status="diverged")]
    assert one(runs, claim()).get("verdict") == "not measured (coop_vae_ebm@vae_proposal diverged (seed 1))"
    assert one(runs, claim(metric="kid"))["verdict"].startswith("not measured (coop_vae_ebm seed 0: too few images")
    got = one(runs, claim(method_b="coop_vae_ebm@noise_K", metric="seconds_per_1000"))
    assert got["verdict"] == "not measured (coop_vae_ebm has no seconds_per_1000; no run of coop_vae_ebm@noise_K)"
    # two metrics of one method: dual_mcmc's z-revision, after vs before
    z = [
        rec("dual_mcmc", s, z_mse_after_revision=0.01 * s + 0.01, z_mse_before_revision=0.01 * s + 0.03) for s in (0, 1)
    ]
    c = claim("dual_mcmc", "dual_mcmc", "z_mse_after_revision", metric_b="z_mse_before_revision")
    assert one(z, c)["verdict"] == "holds" and one(z, c)["difference"] == pytest.approx(-0.02)


def test_the_papers_orderings_are_claims_on_their_datasets_and_on_digits():
    derived = {c.id: c for c in printed_orderings()}
    assert {  # today's seven, from the source tables in methods/paper_numbers.csv
        "latent_ebm_beats_vae_fid",
        "latent_ebm_beats_vae_mse",
        "latent_ebm_beats_abp_fid",
        "dual_mcmc_beats_coopnets_fid",
        "dual_mcmc_beats_coopnets_is",
        "dual_mcmc_beats_coopnets_mse",
        "coop_vae_ebm_beats_coopnets_is",
    } <= set(derived)
    assert derived["dual_mcmc_beats_coopnets_is"].claimed == ">"  # IS: higher is better
    assert "svhn 29.44 vs 46.78" in derived["latent_ebm_beats_vae_fid"].claim
    runs = [
        rec(m, s, dataset=d, fid=f + s)
        for d in ("digits", "cifar10")
        for s in (0, 1, 2)
        for m, f in (("latent_ebm", 1.0), ("abp", 3.0))
    ]
    df = build_claims(runs, claims=[])
    abp = df[df["id"] == "latent_ebm_beats_abp_fid"]
    # Cui, Wu & Han print the pair on svhn and celeba64, not cifar10: no claim there; digits is no paper's dataset
    assert list(abp["dataset"]) == ["digits"] and list(abp["verdict"]) == ["holds"]


def test_the_shipped_ledger_covers_the_seed_papers_claims():
    ledger = load()
    assert len({c.id for c in ledger}) == len(ledger) and all(c.source for c in ledger)
    sides = {(c.method_a, c.metric_a, c.method_b, c.metric_b) for c in ledger}
    assert ("coop_vae_ebm", "fid", "coop_vae_ebm@vae_proposal", "fid") in sides
    assert ("dual_mcmc", "z_mse_after_revision", "dual_mcmc", "z_mse_before_revision") in sides
    assert ("latent_ebm_conv", "locality", "latent_ebm", "locality") in sides
    models = ["short_run", "coop_vae_ebm", "dual_mcmc", "latent_ebm", "latent_ebm_conv", "vae", "abp", "coopnets"]
    df = build_claims([rec(m, 0, fid=1.0) for m in models])
    assert len(df) >= 14 and set(df["dataset"]) == {"digits"}  # every claim has its row, measured or not


BAD_ROWS = {
    "a wrong metric": ("c,words,src,vae,fidd,<,abp,,,", "column 'metric_a' = 'fidd': not a metric"),
    "an unknown method": ("c,words,src,vea,fid,<,abp,,,", "column 'method_a' = 'vea': not a method"),
    "an unknown variant's method": ("c,words,src,vae,fid,<,coop@x0,,,", "column 'method_b' = 'coop@x0'"),
    "a variant the method lacks": ("c,words,src,dual_mcmc,fid,<,dual_mcmc@x1,,,", "column 'method_b' = 'dual_mcmc@x1'"),
    "a wrong side-B metric": ("c,words,src,vae,fid,<,abp,mse2,,", "column 'metric_b' = 'mse2'"),
    "a bound and a side B": ("c,words,src,vae,fid,<,abp,,0.1,why", "either side B"),
    "a bound without reason": ("c,words,src,*,memorised,<,,,0.1,", "column 'bound_reason'"),
    "no direction": ("c,words,src,vae,fid,better,abp,,,", "column 'claimed'"),
    "no source": ("c,words,,vae,fid,<,abp,,,", "column 'source' = '': empty"),
    "side B is side A": ("c,words,src,vae,fid,<,vae,,,", "side B is side A"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_ledger_row_stops_naming_its_file_and_line(tmp_path, case):
    row, needle = BAD_ROWS[case]
    path = tmp_path / "claims.csv"
    path.write_text(",".join(FIELDS) + "\nok,words,src,latent_ebm,fid,<,vae,,,\n" + row + "\n")
    with pytest.raises(SuiteError, match="claims.csv line 3") as err:
        load(path)
    assert needle in str(err.value) and "Fix that row of the claims file" in str(err.value)


def test_a_repeated_id_and_a_wrong_header_stop(tmp_path):
    path = tmp_path / "claims.csv"
    path.write_text(",".join(FIELDS) + "\nx,w,s,latent_ebm,fid,<,vae,,,\nx,w,s,latent_ebm,mse,<,vae,,,\n")
    with pytest.raises(SuiteError, match="line 3 .*already used on line 2"):
        load(path)
    path.write_text("id,claim\nx,w\n")
    with pytest.raises(SuiteError, match="restore the header line"):
        load(path)


def test_table_writes_the_claims_and_prints_them(tmp_path, capsys):
    files = []
    for m, f in (("latent_ebm", 1.0), ("vae", 2.0)):
        for s in (0, 1, 2):
            files.append(tmp_path / m / f"seed{s}" / "metrics.json")
            files[-1].parent.mkdir(parents=True)
            write_json(files[-1], rec(m, s, fid=f + 0.1 * s, n_generated=100, n_reference=1497, extractor="digits"))
    out = tmp_path / "claims.csv"
    assert main(["table", *map(str, files), "--out", str(tmp_path / "t.csv"), "--claims", str(out)]) == 0
    df = pd.read_csv(out)
    row = df[df["id"] == "latent_ebm_beats_vae_fid"].iloc[0]
    assert (row["verdict"], row["n_seeds"], row["difference"]) == ("holds", 3, pytest.approx(-1.0))
    assert "digits latent_ebm_beats_vae_fid: latent_ebm fid < vae fid" in capsys.readouterr().out
