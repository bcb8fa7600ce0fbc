"""The dataset file, defined once: its layout (version, required datasets, statistics) and the checked opener
that the writer's tests, the lazy reader and the training data loader all use.

One HDF5 file per dataset: ``/params`` (N, 18) float64 (attrs names, units, bounds); ``/lr`` (N, 4, n, n) and
``/hr`` (N, 4, 4n, 4n) float32 in physical units, channels (B, v, sigma, M/L); ``/split`` (N,) int8, 0 = training,
1 = validation; ``/stats/{lr,hr}/<key>`` per-channel statistics (``STAT_KEYS``); root attributes: layout version,
galsr version, seed, sampling, grids (JSON), redshift, cosmology, creation time and ``complete``, set last.
"""
import json
import os

import h5py
import numpy as np

from galsr.simulator.grid import Grid
from galsr.simulator.limits import regular_file
from galsr.simulator.params import PARAM_NAMES

LAYOUT_VERSION = 1
REQUIRED = ("params", "lr", "hr", "split", "stats/lr", "stats/hr")
REQUIRED_ATTRS = ("lr_grid", "hr_grid", "redshift", "seed")
STAT_KEYS = ("min", "max", "mean", "std", "log10_B_min", "log10_B_max", "log10_B_mean", "log10_B_std")
SPLITS = {"train": 0, "val": 1}


def check_layout(f, path, hr_factor=None):
    """Raise ValueError naming ``path`` unless the open h5py.File ``f`` is a complete dataset of this layout (with
    HR = ``hr_factor`` x LR pixels when given: the emulator's networks need 4)."""
    version = f.attrs.get("layout_version")
    if version is None or int(version) != LAYOUT_VERSION:
        found = "no layout_version" if version is None else f"galsr dataset layout {int(version)}"
        raise ValueError(f"dataset {path}: {found}, this galsr reads layout {LAYOUT_VERSION}")
    if not bool(f.attrs.get("complete", False)):
        raise ValueError(f"dataset {path} is incomplete (attribute 'complete' is not True); finish it with "
                         f"`galsr generate ... --resume`")
    for name in REQUIRED:
        if name not in f:
            raise ValueError(f"dataset {path}: missing /{name}")
    for key in REQUIRED_ATTRS:
        if key not in f.attrs:
            raise ValueError(f"dataset {path}: missing attribute {key}")
    n = f["params"].shape[0]
    lr, hr = f["lr"].shape, f["hr"].shape
    if f["params"].shape != (n, len(PARAM_NAMES)) or len(lr) != 4 or len(hr) != 4 or lr[0] != n or hr[0] != n \
            or f["split"].shape != (n,) or lr[1] != hr[1] or hr[2] % lr[2] or hr[3] != hr[2] or lr[3] != lr[2]:
        raise ValueError(f"dataset {path}: inconsistent shapes params {f['params'].shape}, lr {lr}, hr {hr}, "
                         f"split {f['split'].shape} (expected N rows of 18 parameters, square maps, HR a multiple "
                         f"of LR)")
    if hr_factor is not None and hr[2] != hr_factor * lr[2]:
        raise ValueError(f"dataset {path}: HR maps of {hr[2]} pixels are not {hr_factor} x the LR maps' {lr[2]}")


def open_dataset_file(path, hr_factor=None):
    """Open a complete galsr dataset read-only (h5py.File); ValueError naming the file and the problem (missing,
    not a regular file, not HDF5, incomplete, other layout version, missing dataset or attribute, inconsistent shapes; HR not
    ``hr_factor`` x LR when given)."""
    path = regular_file(path, "dataset")  # a FIFO or device would be read forever
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"dataset {path} is not a readable HDF5 file ({exc})") from None
    try:
        check_layout(f, path, hr_factor)
    except Exception:
        f.close()
        raise
    return f


class GalaxyDataset:
    """A complete dataset file opened read-only, with lazy h5py views.

    Attributes: ``params`` (N, 18), ``lr`` (N, 4, n, n), ``hr`` (N, 4, 4n, 4n), ``split`` (N,) int8 (h5py datasets,
    sliced on demand), ``attrs`` (dict), ``stats`` ({"lr": {...}, "hr": {...}}), ``lr_grid``, ``hr_grid``,
    ``redshift``. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = f = open_dataset_file(self.path)
        self.params, self.lr, self.hr, self.split = f["params"], f["lr"], f["hr"], f["split"]
        self.attrs = dict(f.attrs)
        self.stats = {k: {s: f[f"stats/{k}/{s}"][()] for s in STAT_KEYS} for k in ("lr", "hr")}
        self.lr_grid = Grid.from_dict(json.loads(f.attrs["lr_grid"]))
        self.hr_grid = Grid.from_dict(json.loads(f.attrs["hr_grid"]))
        self.redshift = float(f.attrs["redshift"])

    def __len__(self):
        return self.params.shape[0]

    def train_indices(self):
        """Row indices of the training split (ascending)."""
        return np.flatnonzero(self.split[()] == SPLITS["train"])

    def val_indices(self):
        """Row indices of the validation split (ascending)."""
        return np.flatnonzero(self.split[()] == SPLITS["val"])

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_dataset(path):
    """Open a complete galsr dataset (``GalaxyDataset``); ValueError naming the file and problem otherwise."""
    return GalaxyDataset(path)
