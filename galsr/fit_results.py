"""Utilities that consume a fit's dynesty Results: posterior samples of all 18 parameters, the parameter summary,
its text table and the run record. Pure functions: nothing is written or printed here."""
import os
import platform

import numpy as np

from galsr.emulator.latency import latency_ms
from galsr.simulator import PARAM_NAMES, PARAM_UNITS


def posterior_samples(results, prior, seed):
    """(weighted full samples (N, 18), weights (N,), equal-weight full samples (M, 18), MAP full vector (18,)) of a
    dynesty Results over the free parameters of ``prior``; ``seed`` fixes the equal-weight resampling."""
    from dynesty.utils import resample_equal

    theta = np.asarray(results.samples)
    weights = np.exp(results.logwt - results.logz[-1])
    weights /= weights.sum()
    full = np.array([prior.full(t) for t in theta])
    equal = np.array([prior.full(t) for t in resample_equal(theta, weights, rstate=np.random.default_rng(seed))])
    log_post = np.asarray(results.logl, dtype=np.float64).copy()
    if prior.incl >= 0:  # the isotropic inclination prior is not flat: MAP = max of logL + ln sin i
        with np.errstate(invalid="ignore", divide="ignore"):
            log_post += np.log(np.sin(theta[:, prior.incl]))
    # samples outside the prior (an importance sampler's proposals can fall there; their weight is 0) give NaN or
    # -inf, and np.argmax would pick a NaN
    log_post = np.where(np.isfinite(log_post) & (weights > 0), log_post, -np.inf)
    return full, weights, equal, full[int(np.argmax(log_post))]


def summarise_parameters(full, weights, best, prior, truth):
    """Per parameter {median, p16, p84, map, unit, fixed[, truth]} (dict by name) of weighted samples (N, 18)."""
    from dynesty.utils import quantile

    out = {}
    for j, name in enumerate(PARAM_NAMES):
        fixed = name in prior.fixed
        if fixed:
            q = [prior.fixed[name]] * 3
        else:
            q = quantile(full[:, j], [0.16, 0.5, 0.84], weights=weights)
        entry = {"median": float(q[1]), "p16": float(q[0]), "p84": float(q[2]), "map": float(best[j]),
                 "unit": PARAM_UNITS[j], "fixed": fixed}
        if truth is not None:
            entry["truth"] = float(truth[j])
        out[name] = entry
    return out


def summarise(results, full, weights, best, prior, truth, forward_name):
    """The content of summary.json (dict): parameters, ln Z and its error, iterations, likelihood calls, sampling
    efficiency [%], free and fixed parameters, the forward model's name."""
    return {"parameters": summarise_parameters(full, weights, best, prior, truth),
            "logz": float(results.logz[-1]), "logzerr": float(results.logzerr[-1]),
            "n_iterations": int(results.niter), "n_likelihood_calls": int(np.sum(results.ncall)),
            "efficiency_percent": float(results.eff), "free": prior.free_names, "fixed": prior.fixed,
            "forward_model": forward_name}


def format_table(summary):
    """The summary (dict of :func:`summarise`) as a text table, headed by which posterior it describes (with the
    finish's effective sample size, galsr.finish) and whether it is a quick look."""
    params = summary["parameters"]
    has_truth = any("truth" in e for e in params.values())
    head = f"{'parameter':<22} {'median':>10} {'-1 sigma':>10} {'+1 sigma':>10} {'MAP':>10}"
    head += f" {'truth':>10}" if has_truth else ""
    lines = [head, "-" * len(head)]
    for name, e in params.items():
        row = f"{name:<22} {e['median']:>10.4g} {e['median'] - e['p16']:>10.3g} {e['p84'] - e['median']:>10.3g} " \
              f"{e['map']:>10.4g}"
        if has_truth:
            row += f" {e['truth']:>10.4g}"
        lines.append(row + ("  (fixed)" if e["fixed"] else ""))
    lines.append(f"ln Z = {summary['logz']:.3f} +- {summary['logzerr']:.3f}")
    posterior = summary.get("posterior") or f"{summary['forward_model']} posterior"
    lines.insert(0, f"posterior: {posterior}")
    if summary.get("quick_look"):
        lines.insert(0, "QUICK LOOK (--quick: sampler settings that do not converge in many dimensions; not a "
                        "result)")
    return "\n".join(lines)


def versions():
    """Versions of galsr and the packages a fit depends on (dict of str)."""
    import dynesty
    import numba
    import torch

    from galsr import __version__

    return {"galsr": __version__, "dynesty": dynesty.__version__, "numpy": np.__version__,
            "numba": numba.__version__, "torch": torch.__version__, "python": platform.python_version()}


def run_record(galaxy, model, prior, data, results, settings, workers, wall, resumed, best):
    """The content of run.json (dict): input, forward model, settings, versions, cores, wall time [s] (``wall``:
    of all sessions of a resumed run, each up to its last checkpoint), likelihood calls (all sessions) and calls
    per second, the forward model's latency [ms] at the MAP, pixels fitted, free and fixed."""
    ncall = int(np.sum(results.ncall))
    return {"input": galaxy.path, "object": galaxy.object_name, "forward_model": model.describe(),
            "settings": dict(settings, workers=int(workers)), "versions": versions(), "cores": os.cpu_count(),
            "wall_time_s": wall, "resumed": bool(resumed),
            "wall_time_note": "all sessions, each to its last checkpoint" if resumed else "whole run",
            "n_likelihood_calls": ncall, "calls_per_second": ncall / wall if wall > 0 else None,
            "forward_model_latency_ms": latency_ms(lambda: model(best), repeats=10, warmup=1),
            "n_pixels_fitted": data.n_pixels, "free": prior.free_names, "fixed": prior.fixed}
