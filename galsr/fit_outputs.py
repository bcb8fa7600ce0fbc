"""What a fit leaves in its output directory, written from a galsr.fitting.FitResult:

- ``samples.h5``: weighted samples (all 18 parameters, log-weights, log-likelihoods) and equal-weight samples;
- ``summary.json``: per parameter median, 16th/84th percentiles, MAP, truth (mocks) and whether it was fixed;
  logZ and its error; the same as a printed table;
- ``corner.png`` (free parameters, truths marked), ``bestfit.fits`` (MAP model maps), ``residuals.png``
  (data / model / normalised residual for each map);
- ``run.json``: settings, versions, forward model, wall time, likelihood calls, time per call;
- ``summary_emulator.json`` after a simulator-exact finish (galsr.finish): the emulator-only posterior.
"""
import logging
import os
import warnings

import h5py
import numpy as np

from galsr.simulator import PARAM_NAMES, PARAM_UNITS

from galsr.fit_results import format_table
from galsr.simulator.fileio import atomic_path, save_figure, write_json_atomic, write_text_atomic
from galsr.simulator.limits import GalsrNote
from galsr.simulator.fit_units import BRIGHTNESS, brightness_error_to_dex, brightness_to_dex


def prepare_output_dir(out_dir, resume=False, overwrite=False):
    """Create ``out_dir``; ValueError if it already holds files and neither ``resume`` (continue the run whose
    checkpoint it holds) nor ``overwrite`` (replace its files) is set."""
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not (resume or overwrite):
        raise ValueError(f"output directory {out_dir} is not empty; resume its run or allow overwriting its files")
    os.makedirs(out_dir, exist_ok=True)


def write_samples(path, full, weights, logl, equal):
    """samples.h5: weighted samples (N, 18), weights (N,), log-likelihoods (N,), equal-weight samples (M, 18)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["names"] = list(PARAM_NAMES)
        f.attrs["units"] = list(PARAM_UNITS)
        g = f.create_group("weighted")
        g.create_dataset("samples", data=full)
        g.create_dataset("weights", data=weights)
        g.create_dataset("logl", data=np.asarray(logl))
        f.create_dataset("equal_weight/samples", data=equal)


def plot_corner(path, equal, prior, truth):
    """Corner plot of the equal-weight samples of the free parameters; returns False (drawing nothing, with a
    GalsrNote warning) when there are no more samples than free parameters, as after a very short --maxcall."""
    import corner
    import matplotlib

    matplotlib.use("Agg")

    idx = prior.free_index
    x = equal[:, idx]
    if x.shape[0] <= x.shape[1]:
        warnings.warn(f"{os.path.basename(path)} not drawn: {x.shape[0]} posterior samples for {x.shape[1]} free "
                      f"parameters (run longer: raise --maxcall)", GalsrNote, stacklevel=2)
        return False
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = np.where(hi > lo, 0.0, 1e-6 * np.maximum(np.abs(lo), 1.0))  # a collapsed posterior still plots
    # corner logs one "Too few points to create valid contours" per panel of a narrow posterior: dozens of lines
    # that say nothing the figure does not show
    logging.disable(logging.WARNING)
    try:
        fig = corner.corner(x, range=list(zip(lo - pad, hi + pad)), labels=[PARAM_NAMES[i] for i in idx],
                            truths=None if truth is None else truth[idx], quantiles=[0.16, 0.5, 0.84],
                            show_titles=True, title_fmt=".3g", title_kwargs={"fontsize": 8},
                            label_kwargs={"fontsize": 8}, truth_color="tab:red")
    finally:
        logging.disable(logging.NOTSET)
    save_figure(fig, path, dpi=70)
    return True


def plot_residuals(path, galaxy, model_maps):
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
        if c == BRIGHTNESS:  # in dex, as the likelihood compares it
            data_img, model_img = brightness_to_dex(data_img), brightness_to_dex(model_maps[0])
            sigma = brightness_error_to_dex(galaxy.maps[0], galaxy.errors[0])
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


def write_fit_outputs(result, out_dir):
    """Write every output of a fit (galsr.fitting.FitResult) to ``out_dir`` (created if missing), each file
    atomically; returns {name: path} (without corner.png when too few samples to draw it)."""
    from galsr.maps_fits import write_maps

    os.makedirs(out_dir, exist_ok=True)
    galaxy, model = result.galaxy, result.forward
    files = {name: os.path.join(out_dir, name) for name in
             ("summary.json", "summary.txt", "samples.h5", "bestfit.fits", "residuals.png", "corner.png", "run.json")}
    write_json_atomic(files["summary.json"], result.summary)
    write_text_atomic(files["summary.txt"], format_table(result.summary) + "\n")
    write_samples(files["samples.h5"], result.samples, result.weights, result.results.logl, result.equal_samples)
    best_maps = model(result.map)
    write_maps(files["bestfit.fits"], best_maps, model.grid, model.redshift, result.map,
               object_name=f"{galaxy.object_name} best fit ({model.name})", overwrite=True)
    plot_residuals(files["residuals.png"], galaxy, best_maps)
    if not plot_corner(files["corner.png"], result.equal_samples, result.prior, galaxy.truth):
        if os.path.exists(files["corner.png"]):  # an earlier run's figure would not belong to these samples
            os.remove(files["corner.png"])
        del files["corner.png"]
    write_json_atomic(files["run.json"], result.run)
    if result.emulator_result is not None:  # the emulator-only posterior stays available beside the exact one
        files["summary_emulator.json"] = write_json_atomic(os.path.join(out_dir, "summary_emulator.json"),
                                                           result.emulator_result.summary)
    return files
