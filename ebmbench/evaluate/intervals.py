"""The interval of each measurement: estimators of FID and IS from the kept features, their
bootstrap standard errors, and the 95 % interval over seeds that the verdict compares with.

Interval of a measured row (method x dataset x metric over k seeds):
  seeds      95 % Student-t interval of the mean over the k runs (needs k >= 2);
  bootstrap  95 % normal interval from resampling each run's generated samples with replacement
             (features kept at scoring time, ebmbench.evaluate.kept_features; the extractor is never
             run again), the per-run bootstrap variances averaged and divided by k for the mean;
  combined   half-width = max(seed half-width, bootstrap half-width). Each seed's value already
             carries its own sampling noise, so the t-interval covers it; the bootstrap is the floor
             when two or three seeds happen to agree, and the only interval of a single seed (which
             then says nothing about training-seed spread: the interval text names "1 seed").

FID's sample-count bias (FID_N = FID_inf + c / N, c > 0; Chong & Forsyth 2020, "Effectively Unbiased
FID and Inception Score and where to find them", CVPR, sec. 3): a run with at least the paper's N
generated images is scored on a random N-subset, the paper's own protocol; a run with fewer is
extrapolated to N = inf by a least-squares line of FID against 1/N over several subset sizes
(their sec. 3.1), and the raw value at the run's N is reported beside it.
"""

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from .kept_features import load_kept

LEVEL = 0.95
N_BOOT = 200  # bootstrap resamples per run (the standard error's own relative error ~ 1/sqrt(2 B) = 5 %)
# Resamples larger than this are drawn at this size and their spread scaled by sqrt(m / N): FID is a
# smooth function of sample means and covariances, so its standard error falls as 1/sqrt(N); this
# keeps 50,000 x 2048 Inception features at ~1/10 of the cost per resample.
BOOT_MAX = 5000
_Z = stats.norm.ppf(0.5 + LEVEL / 2)


# -- FID from kept features ----------------------------------------------------------------------


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


class FID:
    """FID of (subsets of) one set of generated features against fixed reference statistics.

    tr sqrt(S_g S_r) equals the sum of the square roots of the eigenvalues of R S_g R, R = S_r^(1/2)
    (similar matrices), and R S_g R = (X_c R)^T (X_c R) / (n - 1): so each resample costs one
    product and one symmetric eigensolve, no general matrix square root.
    """

    def __init__(self, features: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray):
        self.x = np.asarray(features, dtype=np.float64)
        self.mu_ref = np.asarray(mu_ref, dtype=np.float64)
        sigma_ref = np.asarray(sigma_ref, dtype=np.float64)
        self.tr_ref = float(np.trace(sigma_ref))
        self.y = self.x @ _sqrtm_psd(sigma_ref)
        self.n = len(self.x)

    def take(self, idx) -> "FID":
        """The same reference, generated features x[idx] (a bootstrap resample)."""
        new = object.__new__(FID)
        new.__dict__.update(self.__dict__, x=self.x[idx], y=self.y[idx], n=len(idx))
        return new

    def __call__(self, idx=None) -> float:
        x, y = (self.x, self.y) if idx is None else (self.x[idx], self.y[idx])
        m = len(x)
        mu = x.mean(0)
        yc = y - y.mean(0)
        small = yc @ yc.T if m < yc.shape[1] else yc.T @ yc  # same non-zero eigenvalues
        tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(small), 0, None)).sum() / np.sqrt(m - 1)
        tr_gen = ((x - mu) ** 2).sum() / (m - 1)
        d = mu - self.mu_ref
        return float(d @ d + tr_gen + self.tr_ref - 2 * tr_covmean)


def _one_thread(fn):
    """Run with one BLAS thread when the features are small (the digits classifier's 128): many small
    products, for which OpenBLAS's threads cost more than they save on a loaded machine with few
    cores (docs/performance.md). Inception's 2048-d features keep all threads."""

    def wrapped(*args, **kwargs):
        with threadpool_limits(1 if np.shape(args[0])[1] <= 256 else None):
            return fn(*args, **kwargs)

    return functools.wraps(fn)(wrapped)


def fid_infinity(fid: FID, rng: np.random.Generator, n_points: int = 10, min_frac: float = 0.2):
    """FID extrapolated to infinitely many samples: least squares of FID_N = a + b / N over subsets
    of N evenly spaced in 1/N between min_frac x n and n (Chong & Forsyth 2020 sec. 3.1 fit 15
    points from 5k to 50k, i.e. min_frac 0.1). Returns (a, Ns, FIDs)."""
    lo = max(int(min_frac * fid.n), min(fid.n, fid.x.shape[1] + 2))
    inv = np.linspace(1 / lo, 1 / fid.n, n_points)
    ns = np.unique(np.round(1 / inv).astype(int))
    vals = np.array([fid(rng.choice(fid.n, n, replace=False)) if n < fid.n else fid() for n in ns])
    b, a = np.polyfit(1 / ns, vals, 1)
    return float(a), ns, vals


@dataclass(frozen=True)
class Estimate:
    value: float  # the number compared with the paper
    se: float  # bootstrap standard error over generated samples (nan: none)
    raw: float  # the plain value on all n samples
    n: int  # samples in the run
    how: str  # e.g. "FID@50000", "FID-inf (N=200..1000)", "raw"


@_one_thread
def estimate_fid(
    features, mu_ref, sigma_ref, paper_n: int | None, seed: int = 0, n_boot: int = N_BOOT, boot_max: int = BOOT_MAX
) -> Estimate:
    """FID at the paper's N where the run has that many samples, else FID-inf; with its bootstrap
    standard error (the same estimator recomputed on each resample)."""
    rng = np.random.default_rng(seed)
    f = FID(features, mu_ref, sigma_ref)
    raw = f()
    if paper_n and f.n >= paper_n:
        value = f(rng.choice(f.n, paper_n, replace=False)) if paper_n < f.n else raw
        m = min(paper_n, boot_max)
        boots = [f(rng.integers(0, f.n, m)) for _ in range(n_boot)]
        scale, how = np.sqrt(m / paper_n), f"FID@{paper_n}"
    elif f.n < 2 * (f.x.shape[1] + 2):
        # subsets below the feature dimension have singular covariances: no line to extrapolate
        m = min(f.n, boot_max)
        boots = [f(rng.integers(0, f.n, m)) for _ in range(n_boot)]
        value, scale, how = raw, np.sqrt(m / f.n), f"raw@{f.n} (too few samples for FID-inf: < 2 x {f.x.shape[1] + 2})"
    else:
        value, ns, _ = fid_infinity(f, rng)
        # bootstrap the whole estimator: resample, then refit. Four points per refit keep this
        # ~ n_boot x 4 eigensolves; the line through them is as straight as through ten.
        m = min(f.n, boot_max)
        boots = [fid_infinity(f.take(rng.integers(0, f.n, m)), rng, n_points=4)[0] for _ in range(n_boot)]
        scale, how = np.sqrt(m / f.n), f"FID-inf (N={ns[0]}..{ns[-1]})"
    return Estimate(value, float(scale * np.std(boots, ddof=1)), raw, f.n, how)


def inception_score(logits: np.ndarray, splits: int = 10, shuffle_seed: int | None = 2020) -> float:
    """torch-fidelity's IS (its defaults: a RandomState(2020) shuffle, 10 splits): the mean over
    splits of exp(E_x KL(p(y|x) || p(y)))."""
    n = len(logits)
    if shuffle_seed is not None:
        logits = logits[np.random.RandomState(shuffle_seed).permutation(n)]
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    out = []
    for i in range(splits):
        chunk = logp[i * n // splits : (i + 1) * n // splits]
        p = np.exp(chunk)
        out.append(np.exp((p * (chunk - np.log(p.mean(0)))).sum(1).mean()))
    return float(np.mean(out))


@_one_thread
def estimate_is(logits, seed: int = 0, n_boot: int = N_BOOT) -> Estimate:
    rng = np.random.default_rng(seed)
    logits = np.asarray(logits, dtype=np.float64)
    raw = inception_score(logits)
    boots = [
        inception_score(logits[rng.integers(0, len(logits), len(logits))], shuffle_seed=None) for _ in range(n_boot)
    ]
    return Estimate(raw, float(np.std(boots, ddof=1)), raw, len(logits), "raw")


# -- combining seeds and samples -----------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # inf where nothing bounds it
    n_seeds: int
    n_samples: int | None
    text: str

    @property
    def lo(self):
        return self.mean - self.half_width

    @property
    def hi(self):
        return self.mean + self.half_width


def combine(values, ses=(), n_samples: int | None = None) -> Interval:
    """95 % interval of the mean of per-seed `values`; `ses`: their bootstrap standard errors."""
    v = np.asarray(values, dtype=np.float64)
    k = len(v)
    if k == 0:
        raise ValueError("combine() needs at least one value")
    h_seed = stats.t.ppf(0.5 + LEVEL / 2, k - 1) * v.std(ddof=1) / np.sqrt(k) if k > 1 else np.inf
    se = np.asarray([s for s in ses if np.isfinite(s)], dtype=np.float64)
    h_boot = _Z * np.sqrt((se**2).mean() / k) if len(se) == k else np.nan
    parts = [f"{k} seed{'s' if k > 1 else ''}" + (" (t)" if k > 1 else "")]
    if np.isfinite(h_boot):
        parts.append(f"bootstrap over {n_samples} samples x {N_BOOT}")
        h = h_boot if k == 1 else max(h_seed, h_boot)
    else:
        h = h_seed
    return Interval(float(v.mean()), float(h), k, n_samples, ", ".join(parts))


@functools.cache
def _run_estimate(features_path, metric: str, paper_n: int | None, seed: int) -> Estimate | None:
    kept = load_kept(features_path)
    if kept is None:
        return None
    if metric == "fid":
        return estimate_fid(kept[f"gen_{kept['fid_layer']}"], kept["ref_mu"], kept["ref_sigma"], paper_n, seed)
    if metric == "is" and "isc_layer" in kept:
        return estimate_is(kept[f"gen_{kept['isc_layer']}"], seed)
    return None  # KID and MSE: the seed interval only (KID would need the reference features too)


def measured_interval(runs: list[dict], metric: str, paper_n: int | None = None) -> tuple[Interval, str]:
    """Interval of one metric over runs (metrics records, all with the metric; `features` resolved
    by `metrics_record`), and the estimator."""
    ests = [_run_estimate(r.get("features"), metric, paper_n, int(r.get("seed") or 0)) for r in runs]
    if all(e is not None for e in ests):
        return combine([e.value for e in ests], [e.se for e in ests], ests[0].n), ests[0].how
    n = runs[0].get("mse_n") if metric == "mse" else runs[0].get("n_generated")
    return combine([r[metric] for r in runs], n_samples=n), "raw"
