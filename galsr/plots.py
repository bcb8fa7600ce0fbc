"""Figures of maps: the four panels with colour bars and units, shared by simulate, evaluate and fit."""
import numpy as np

from galsr.simulator import CHANNEL_LABELS

PANEL_UNITS = (r"$\log_{10}\,B$ [L$_\odot$ kpc$^{-2}$]", r"$v$ [km s$^{-1}$]", r"$\sigma$ [km s$^{-1}$]",
               r"$M/L$ [M$_\odot$/L$_\odot$]")


def _figure(nrows, ncols, size=3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.9 * nrows), squeeze=False,
                             constrained_layout=True)
    return plt, fig, axes


def panel_image(maps, channel):
    """The displayed image of one channel: log10 for brightness, the map itself otherwise."""
    img = np.asarray(maps[channel], dtype=np.float64)
    return np.log10(np.clip(img, 1e-300, None)) if channel == 0 else img


def draw_panel(fig, ax, image, grid, channel, title=None, vlim=None, cmap=None):
    """Draw one map on ``ax`` with a colour bar; velocity gets a symmetric diverging scale."""
    half = grid.field_kpc / 2.0
    if vlim is None:
        finite = image[np.isfinite(image)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        if channel == 1:
            hi = max(abs(lo), abs(hi))
            lo = -hi
        vlim = (lo, hi)
    cmap = cmap or ("RdBu_r" if channel == 1 else ("inferno" if channel == 0 else "viridis"))
    im = ax.imshow(image, origin="lower", extent=(-half, half, -half, half), vmin=vlim[0], vmax=vlim[1], cmap=cmap)
    ax.set_title(title or CHANNEL_LABELS[channel], fontsize=9)
    ax.set_xlabel("x [kpc]", fontsize=8)
    ax.set_ylabel("y [kpc]", fontsize=8)
    ax.tick_params(labelsize=7)
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label(PANEL_UNITS[channel], fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return vlim


def plot_maps(maps, grid, path, title=None):
    """Save a 2 x 2 figure of maps (4, n, n) on ``grid`` (axes in kpc) to ``path`` (PNG, PDF...)."""
    from galsr.simulator.fileio import save_figure

    plt, fig, axes = _figure(2, 2)
    for c in range(4):
        draw_panel(fig, axes.flat[c], panel_image(maps, c), grid, c)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
