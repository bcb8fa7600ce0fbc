"""LR/HR pairs of a complete galsr dataset file (HDF5, layout in galsr.simulator.dataset_file) as normalised torch tensors.

``open_dataset_file`` (galsr.simulator.dataset_file, the one layout definition) validates the file; ``PairDataset`` serves one split (training or validation) either from
memory (normalised once at load, the fast path for files that fit in RAM) or lazily from the file (big files).
The transform (training.transform.MapTransform) is built from the file's stored ``/stats``.
"""
import hashlib
import json
import os

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from galsr.emulator.transform import MapTransform
from galsr.simulator.centre_patch import check_npatch, patch_mask
from galsr.simulator.dataset_file import SPLITS, open_dataset_file
from galsr.simulator.grid import Grid

#: Load a split into memory when its normalised LR + HR tensors take at most this many bytes.
IN_MEMORY_LIMIT_BYTES = 4 * 2**30


def read_stats(f):
    """The file's ``/stats`` as {"lr": {...}, "hr": {...}} of numpy arrays / floats."""
    out = {}
    for level in ("lr", "hr"):
        g = f["stats"][level]
        out[level] = {k: (np.asarray(g[k][()]) if g[k].shape else float(g[k][()])) for k in g}
    return out


def _attr_text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def dataset_info(path):
    """Metadata of a dataset file as plain JSON: channels, units, grids (dicts), redshift, param names/units/
    bounds, n rows, stats, fingerprint. Used to fill the emulator file."""
    with open_dataset_file(path, hr_factor=4) as f:
        attrs = {k: _attr_text(v) for k, v in f.attrs.items()}
        p = f["params"]
        info = {
            "n": int(p.shape[0]),
            "channels": [str(_attr_text(c)) for c in f["lr"].attrs.get("channels", ("B", "v", "sigma", "ML"))],
            "units": [str(_attr_text(c)) for c in f["lr"].attrs.get("units", ())],
            "param_names": [str(_attr_text(c)) for c in p.attrs.get("names", ())],
            "param_units": [str(_attr_text(c)) for c in p.attrs.get("units", ())],
            "bounds": np.asarray(p.attrs.get("bounds", np.zeros((0, 2)))).tolist(),
            "lr_grid": _json_attr(attrs.get("lr_grid")),
            "hr_grid": _json_attr(attrs.get("hr_grid")),
            "redshift": float(attrs["redshift"]) if "redshift" in attrs else None,
            "seed": attrs.get("seed"),
            "n_train": int(np.sum(f["split"][()] == 0)),
            "n_val": int(np.sum(f["split"][()] == 1)),
            "fingerprint": fingerprint(f),
            "stats": {lv: {k: np.asarray(v).tolist() for k, v in s.items()} for lv, s in read_stats(f).items()},
        }
    return info


def _json_attr(value):
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def fingerprint(f):
    """sha256 (hex, 16 chars) of the parameters, split and seed of an open dataset file: its identity."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(f["params"][()], dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(f["split"][()], dtype="i1").tobytes())
    h.update(str(_attr_text(f.attrs.get("seed"))).encode())
    return h.hexdigest()[:16]


def split_indices(f, split, limit=None):
    """Sorted row indices of ``split`` ("train" or "val"), the first ``limit`` of them if given."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    idx = np.flatnonzero(f["split"][()] == SPLITS[split])
    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"max rows for split {split!r} must be >= 1, got {limit!r}")
        idx = idx[: int(limit)]
    if len(idx) == 0:
        raise ValueError(f"dataset {f.filename!r} has no rows in split {split!r}")
    return idx


def transform_from_file(path):
    """MapTransform from the dataset's ``/stats`` (LR and HR bounds together)."""
    with open_dataset_file(path, hr_factor=4) as f:
        return MapTransform.from_stats(read_stats(f), channels=dataset_channels(f))


def dataset_channels(f):
    chans = f["lr"].attrs.get("channels")
    if chans is None:
        return ("B", "v", "sigma", "ML")
    return tuple(str(_attr_text(c)) for c in chans)


def _read_rows(dset, idx, block=512):
    """dset[idx] for sorted indices, read block by block (h5py fancy indexing is slow on long index lists)."""
    out = np.empty((len(idx),) + dset.shape[1:], dtype=np.float32)
    for start in range(0, len(idx), block):
        sub = idx[start:start + block]
        lo, hi = int(sub[0]), int(sub[-1]) + 1
        if hi - lo == len(sub):
            out[start:start + len(sub)] = dset[lo:hi]
        else:
            out[start:start + len(sub)] = dset[lo:hi][sub - lo]
    return out


class PairDataset(Dataset):
    """Normalised (LR, HR) pairs of one split of a dataset file.

    Args:
        path: str, complete galsr dataset file.
        split: "train" or "val".
        transform: MapTransform or None (default: from the file's stats).
        limit: int or None, use only the first ``limit`` rows of the split.
        in_memory: bool or None; None = load when the split fits in IN_MEMORY_LIMIT_BYTES.
        centre_patch: int, side in HR pixels of the central patch that the emulator simulates directly
            (galsr.simulator.centre_patch); 0 = none. With a patch, ``patch_masks(indices)`` gives its pixels.

    Items are (x, y) float32 tensors (C, n, n) and (C, 4n, 4n); ``batch(indices)`` returns stacked batches
    (the training loop's fast path). ``rows`` are the file rows of the split.
    """

    def __init__(self, path, split="train", transform=None, limit=None, in_memory=None, centre_patch=0):
        self.path = os.fspath(path)
        self.split = split
        with open_dataset_file(self.path, hr_factor=4) as f:
            self.transform = transform or MapTransform.from_stats(read_stats(f), channels=dataset_channels(f))
            self.rows = split_indices(f, split, limit)
            self.lr_shape, self.hr_shape = tuple(f["lr"].shape[1:]), tuple(f["hr"].shape[1:])
            size = len(self.rows) * 4 * (np.prod(self.lr_shape) + np.prod(self.hr_shape))
            self.in_memory = bool(size <= IN_MEMORY_LIMIT_BYTES) if in_memory is None else bool(in_memory)
            if self.in_memory:
                self._x = self._normalise(_read_rows(f["lr"], self.rows))
                self._y = self._normalise(_read_rows(f["hr"], self.rows))
            self.centre_patch = int(centre_patch)
            self._masks = None
            if self.centre_patch:
                hr_grid = Grid.from_dict(json.loads(_attr_text(f.attrs["hr_grid"])))
                npatch = check_npatch(self.centre_patch, hr_grid.npix)
                params = f["params"][()][self.rows]
                self._masks = torch.from_numpy(patch_mask(params, hr_grid, npatch)[:, None])
        self._file = None

    def patch_masks(self, indices):
        """Boolean (B, 1, 4n, 4n) tensor of the central-patch pixels of positions ``indices``, or None without a
        patch: the pixels the emulator simulates directly, which the network need not predict."""
        if self._masks is None:
            return None
        return self._masks[torch.from_numpy(np.asarray(indices, dtype=np.int64))]

    def _normalise(self, maps):
        return torch.from_numpy(np.ascontiguousarray(self.transform.forward(maps), dtype=np.float32))

    def __len__(self):
        return len(self.rows)

    def _h5(self):
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def batch(self, indices):
        """(x, y) for positions ``indices`` (array of ints into this split), float32 tensors (B, C, n, n)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.in_memory:
            t = torch.from_numpy(indices)
            return self._x[t], self._y[t]
        order = np.argsort(self.rows[indices], kind="stable")
        rows = self.rows[indices][order]
        f = self._h5()
        x, y = _read_rows(f["lr"], rows), _read_rows(f["hr"], rows)
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        return self._normalise(x[inv]), self._normalise(y[inv])

    def __getitem__(self, i):
        x, y = self.batch([i])
        return x[0], y[0]

    def physical(self, indices, level="hr"):
        """Physical maps (B, C, n, n) float32 of positions ``indices`` at ``level`` ("lr" or "hr")."""
        with h5py.File(self.path, "r") as f:
            rows = self.rows[np.asarray(indices, dtype=np.int64)]
            order = np.argsort(rows, kind="stable")
            out = _read_rows(f[level], rows[order])
            inv = np.empty_like(order)
            inv[order] = np.arange(len(order))
            return out[inv]

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state
