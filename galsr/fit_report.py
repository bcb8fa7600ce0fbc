"""What a fit leaves in its output directory (design.md "Fit"):

- ``samples.h5``: weighted samples (all 18 parameters, log-weights, log-likelihoods) and equal-weight samples;
- ``summary.json``: per parameter median, 16th/84th percentiles, MAP, truth (mocks) and whether it was fixed;
  logZ and its error; the same as a printed table;
- ``corner.png`` (free parameters, truths marked), ``bestfit.fits`` (MAP model maps), ``residuals.png``
  (data / model / normalised residual for each map);
- ``run.json``: settings, versions, forward model, wall time, likelihood calls, time per call.
"""
import json
import math
import os
import platform

import h5py
import numpy as np

from galsr.simulator import PARAM_NAMES, PARAM_UNITS

from galsr.emulator.latency import latency_ms
from galsr.simulator.fileio import atomic_path, save_figure, write_json_atomic


def posterior_samples(results, prior, seed):
    """(weighted full samples (N, 18), weights (N,), equal-weight full samples (M, 18), MAP full vector (18,))."""
    from dynesty.utils import resample_equal

    theta = np.asarray(results.samples)
    weights = np.exp(results.logwt - results.logz[-1])
    weights /= weights.sum()
    full = np.array([prior.full(t) for t in theta])
    equal = np.array([prior.full(t) for t in resample_equal(theta, weights, rstate=np.random.default_rng(seed))])
    log_post = np.asarray(results.logl, dtype=np.float64).copy()
    if prior.incl >= 0:  # the isotropic inclination prior is not flat: MAP = max of logL + ln sin i
        log_post += np.log(np.sin(theta[:, prior.incl]))
    return full, weights, equal, full[int(np.argmax(log_post))]


def summarise(full, weights, best, prior, truth):
    """The ``parameters`` block of summary.json."""
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


def format_table(params, logz, logzerr):
    """The summary as a text table."""
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
    lines.append(f"ln Z = {logz:.3f} +- {logzerr:.3f}")
    return "\n".join(lines)


def write_samples(path, full, weights, logl, equal):
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["names"] = list(PARAM_NAMES)
        f.attrs["units"] = list(PARAM_UNITS)
        g = f.create_group("weighted")
        g.create_dataset("samples", data=full)
        g.create_dataset("weights", data=weights)
        g.create_dataset("logl", data=np.asarray(logl))
        f.create_dataset("equal_weight/samples", data=equal)


def plot_corner(path, equal, prior, truth):
    import corner
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = prior.free_index
    x = equal[:, idx]
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = np.where(hi > lo, 0.0, 1e-6 * np.maximum(np.abs(lo), 1.0))  # a collapsed posterior still plots
    fig = corner.corner(x, range=list(zip(lo - pad, hi + pad)), labels=[PARAM_NAMES[i] for i in idx],
                        truths=None if truth is None else truth[idx], quantiles=[0.16, 0.5, 0.84],
                        show_titles=True, title_fmt=".3g", title_kwargs={"fontsize": 8},
                        label_kwargs={"fontsize": 8}, truth_color="tab:red")
    save_figure(fig, path, dpi=70)


def plot_residuals(path, galaxy, model_maps, data):
    """Data / model / (data - model) / error for the four maps (masked pixels blank)."""
    from galsr.plots import _figure, draw_panel

    plt, fig, axes = _figure(4, 3, size=3.0)
    for c in range(4):
        ok = galaxy.usable(c)
        if not ok.any():
            for ax in axes[c]:
                ax.set_axis_off()
            continue
        data_img = np.where(ok, galaxy.maps[c], np.nan)
        if c == 0:  # brightness in log10, residuals in units of the error in dex
            data_img, model_img = np.log10(data_img), np.log10(model_maps[0])
            sigma = galaxy.errors[0] / (galaxy.maps[0] * math.log(10))
        else:
            model_img, sigma = model_maps[c], galaxy.errors[c]
        resid = (data_img - model_img) / sigma
        d_img, m_img = data_img, model_img
        vlim = draw_panel(fig, axes[c, 0], d_img, galaxy.grid, c, title="data")
        draw_panel(fig, axes[c, 1], np.where(ok, m_img, np.nan), galaxy.grid, c, title="model (MAP)", vlim=vlim)
        draw_panel(fig, axes[c, 2], np.where(ok, resid, np.nan), galaxy.grid, 1, title="(data - model) / error",
                   vlim=(-4, 4))
        axes[c, 2].images[0].colorbar.set_label("residual / sigma", fontsize=8)
    save_figure(fig, path, dpi=80)


def _versions():
    import dynesty
    import numba
    import torch

    from galsr import __version__

    return {"galsr": __version__, "dynesty": dynesty.__version__, "numpy": np.__version__,
            "numba": numba.__version__, "torch": torch.__version__, "python": platform.python_version()}


def write_outputs(out_dir, galaxy, model, prior, data, results, settings, workers, wall, resumed):
    """Write every output file; returns (summary dict, run dict) and prints the table."""
    from galsr.maps_fits import write_maps

    full, weights, equal, best = posterior_samples(results, prior, int(settings["seed"]))
    params = summarise(full, weights, best, prior, galaxy.truth)
    logz, logzerr = float(results.logz[-1]), float(results.logzerr[-1])
    ncall = int(np.sum(results.ncall))
    summary = {"parameters": params, "logz": logz, "logzerr": logzerr, "n_iterations": int(results.niter),
               "n_likelihood_calls": ncall, "efficiency_percent": float(results.eff),
               "free": prior.free_names, "fixed": prior.fixed, "forward_model": model.name}
    write_json_atomic(os.path.join(out_dir, "summary.json"), summary)
    table = format_table(params, logz, logzerr)
    with atomic_path(os.path.join(out_dir, "summary.txt")) as tmp, open(tmp, "w") as f:
        f.write(table + "\n")
    print(table)
    write_samples(os.path.join(out_dir, "samples.h5"), full, weights, results.logl, equal)
    best_maps = model(best)
    write_maps(os.path.join(out_dir, "bestfit.fits"), best_maps, model.grid, model.redshift, best,
               object_name=f"{galaxy.object_name} best fit ({model.name})", overwrite=True)
    plot_residuals(os.path.join(out_dir, "residuals.png"), galaxy, best_maps, data)
    plot_corner(os.path.join(out_dir, "corner.png"), equal, prior, galaxy.truth)
    run = {"input": galaxy.path, "object": galaxy.object_name, "forward_model": model.describe(),
           "settings": dict(settings, workers=int(workers)), "versions": _versions(), "cores": os.cpu_count(),
           "wall_time_s": wall, "resumed": bool(resumed),
           "wall_time_note": "this session only" if resumed else "whole run",
           "n_likelihood_calls": ncall, "calls_per_second": ncall / wall if wall > 0 else None,
           "forward_model_latency_ms": latency_ms(lambda: model(best), repeats=10, warmup=1),
           "n_pixels_fitted": data.n_pixels, "free": prior.free_names, "fixed": prior.fixed}
    write_json_atomic(os.path.join(out_dir, "run.json"), run)
    return summary, run
