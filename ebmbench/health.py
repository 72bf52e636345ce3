"""Training health: the chain signals of each iteration, an early warning of divergence, health.png.

The signals follow Nijkamp, Hill, Han, Zhu, Wu, "On the Anatomy of MCMC-Based Maximum Likelihood
Learning of Energy-Based Models" (AAAI 2020), who read stable vs unstable learning from two
quantities: the energy difference between the data and the chains' samples (it oscillates around
zero while learning is stable) and the magnitude of the energy's input gradient along the chains
(it settles while stable and grows without bound when not). Each chain of an iteration
(ebmbench.langevin.diagnosing) adds its first- and last-step gradient norm, the ratio of the
drift to the noise of its last update and, for image chains, its share of pixels outside [-1, 1].
"""

# positive-phase minus negative-phase energy: data vs samples, posterior vs prior (latent EBMs)
ENERGY_PAIRS = (("energy_data", "energy_sample"), ("energy_posterior", "energy_prior"))
SIGNALS = ("grad_first", "grad_last", "drift_noise", "out_of_range")


def energy_gap(stats: dict) -> float | None:
    """The signed energy difference of the anatomy paper, from the energies an iteration logs."""
    for pos, neg in ENERGY_PAIRS:
        if pos in stats and neg in stats:
            return stats[pos] - stats[neg]
    return None


def iteration_signals(stats: dict, chains: list[dict]) -> dict[str, float]:
    """The health fields of one iteration's log line: `energy_gap` and `<chain>/<signal>` for each
    chain run in it (a chain run twice in one iteration gets `#2`, `#3`, ...)."""
    out, seen = {}, {}
    gap = energy_gap(stats)
    if gap is not None:
        out["energy_gap"] = gap
    for c in chains:
        seen[c["chain"]] = seen.get(c["chain"], 0) + 1
        name = c["chain"] + (f"#{seen[c['chain']]}" if seen[c["chain"]] > 1 else "")
        out.update({f"{name}/{s}": c[s] for s in SIGNALS if s in c})
    return out


def is_health_field(key: str) -> bool:
    return key == "energy_gap" or "/" in key


def health_figure(log: list[dict], path, title: str = "") -> None:
    """health.png: the energy gap, the chains' gradient norms, their drift/noise ratio and (image
    chains) the share of pixels outside [-1, 1], per iteration; warnings and restarts marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .plots import save_figure

    lines = [r for r in log if "event" not in r]
    keys = sorted({k for r in lines for k in r if is_health_field(k)})
    panels = {
        "energy gap (data - samples, or posterior - prior; stable: around 0)": [k for k in keys if k == "energy_gap"],
        "mean |dE/dx| at the chain's first / last step": [k for k in keys if k.endswith(("/grad_first", "/grad_last"))],
        "drift / noise of the last update": [k for k in keys if k.endswith("/drift_noise")],
        "share of pixels outside [-1, 1]": [k for k in keys if k.endswith("/out_of_range")],
    }
    panels = {name: ks for name, ks in panels.items() if ks} or {"no chain signals logged": []}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    it = np.array([r["iter"] for r in lines])
    for ax, (name, ks) in zip(axes[0], panels.items(), strict=True):
        for k in ks:
            y = np.array([r.get(k, np.nan) for r in lines], float)
            ax.plot(it, y, lw=0.9, label=k)
        if ks and name.startswith(("mean |dE/dx|", "drift")):
            ax.set_yscale("log")
        if ks == ["energy_gap"]:
            ax.axhline(0, color="grey", lw=0.6)
        for r in log:
            if r.get("event") in ("warning", "restart", "rewind"):
                ax.axvline(r["iter"], color="red" if r["event"] == "warning" else "black", ls="--", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration")
        if ks:
            ax.legend(fontsize=7)
    fig.suptitle(title + "  (red: early warning, black: restart)")
    save_figure(fig, path)


class EarlyWarning:
    """Flags a run heading for divergence from its chain signals (docs/training-health.md has the
    measurements behind the rule): the runaway that ends in a non-finite value starts as a
    sustained growth of the energy's input gradient along the chains, so the rule fires when the
    mean over the last `window` iterations of any chain's gradient norm is more than `growth` times
    its mean over the `window` iterations `window` earlier. Means over windows, not single
    iterations, so one steep batch does not fire it. `growth` 0 turns it off.

    `update` is fed each logged iteration and returns None, or the warning's message the first
    time a signal fires (the loop records it and acts as the config asks)."""

    def __init__(self, growth: float, window: int, after: int = 0):
        self.growth, self.window, self.after = growth, window, after
        self.history: dict[str, list[float]] = {}

    def reset(self) -> None:
        """After a rewind the run continues from older weights: the history starts again."""
        self.history.clear()

    def update(self, i: int, health: dict) -> tuple[str, str] | None:
        """(signal, message) when a signal fires at iteration i, else None."""
        if not self.growth or i < self.after:
            return None
        w = self.window
        for key, v in health.items():
            if not key.endswith(("/grad_first", "/grad_last")):
                continue
            h = self.history.setdefault(key, [])
            h.append(v)
            del h[: -3 * w]
            if len(h) < 3 * w:
                continue
            before, now = sum(h[:w]) / w, sum(h[-w:]) / w
            if before > 0 and now > self.growth * before:
                return key, (
                    f"early warning at iteration {i}: the chain signal {key} (mean input-gradient norm) grew "
                    f"{now / before:.1f}x in {2 * w} iterations ({before:.3g} -> {now:.3g}), the runaway that "
                    f"precedes divergence. Remedies: a lower learning rate, more data noise or a smaller "
                    f"Langevin step (the config's on_warning: rewind goes back to the last checkpoint "
                    f"and halves the learning rates)."
                )
        return None
