"""Numbers that come with a run's samples rather than from scoring them: the sampling cost that
`ebmbench sample` records in samples.json (`seconds_per_1000`) and a method's own measurements
(measurements.json, written from `Method.measurements`), merged into metrics.json by `ebmbench score`
as metrics like FID (ebmbench.evaluate.scoring.METRICS holds these names too)."""

import math

from ..checks import input_file
from ..io import SuiteError, read_json

# metric -> lower is better. What each method measures, and how: its own docstring.
MEASURED = {
    "seconds_per_1000": True,  # wall seconds of drawing the scored samples, per 1,000 images
    "recon_mse_noise": True,  # short_run: test MSE ([0, 1] pixels) after descent on the chain's initial noise
    "z_mse_before_revision": True,  # dual_mcmc: test MSE of G(z0), z0 from the inference model
    "z_mse_after_revision": True,  # dual_mcmc: test MSE of G(z) after the posterior z-chain from z0
    "locality": False,  # latent_ebm(_conv): share of one latent unit's image change inside its patch
}
FROM_SAMPLES = ("seconds_per_1000",)  # recorded by `ebmbench sample` itself, never by a method


def measured_metrics(labels: dict, measurements_path=None) -> dict:
    """The sampling cost from a run's samples.json labels, and the measurements file's numbers
    (each a metric of MEASURED; a non-finite one becomes null with `<metric>_unavailable`)."""
    out = {k: labels[k] for k in FROM_SAMPLES if labels.get(k) is not None}
    if measurements_path is None:
        return out
    path = input_file(measurements_path, "measurements file (--measurements)")
    found = read_json(path)
    if not isinstance(found, dict):
        raise SuiteError(f"measurements file {path} is not a JSON object; rerun the sample step that writes it.")
    for k, v in found.items():
        if k not in MEASURED or k in FROM_SAMPLES:
            allowed = ", ".join(k for k in MEASURED if k not in FROM_SAMPLES)
            raise SuiteError(
                f"measurements file {path} holds '{k}', not a measurement of this suite ({allowed}); "
                f"declare it in ebmbench/evaluate/measured.py (MEASURED) or rename it in the method."
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SuiteError(f"measurements file {path}: {k} = {v!r} is not a number; rerun the sample step.")
        out[k] = float(v) if math.isfinite(v) else None
        if out[k] is None:
            out[f"{k}_unavailable"] = f"not finite ({v}) in {path}"
    return out
