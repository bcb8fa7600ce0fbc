"""Writing LR/HR training sets in HDF5 (layout in galsr.simulator.dataset_file): generation that is parallel,
resumable and reproducible.

Crash safety. While a set is being generated its rows live in ``<out>.partial/``: ``meta.json`` (every setting
that decides the bytes, written once) and one ``block_NNNNN.npz`` per finished block of rows, each written to a
temporary name and renamed, so a run killed at any moment leaves only whole blocks. When every block exists the
HDF5 file is assembled deterministically (fixed chunks, gzip + shuffle, no timestamps) into a temporary file,
``complete`` is set last, and the file is renamed to ``<out>``: ``<out>`` is never a partial file. ``resume=True``
computes only the missing blocks and ends with the same bytes as an uninterrupted run; the file's dataset bytes do
not depend on the number of workers or the order in which blocks finish.
"""
import datetime
import json
import math
import os
import shutil

import h5py
import numpy as np

from galsr.simulator.constants import CHANNEL_UNITS, CHANNELS
from galsr.simulator.fileio import atomic_path, exclusive_lock, write_json_atomic
from galsr.simulator.limits import cap_workers
from galsr.simulator.cosmology import COSMOLOGY, kpc_per_arcsec
from galsr.simulator.dataset_file import LAYOUT_VERSION
from galsr.simulator.grid import Grid
from galsr.simulator.params import PARAM_NAMES, PARAM_UNITS, ParameterSpace
from galsr.simulator.simulate import simulate

_COMPRESSION = dict(compression="gzip", compression_opts=1, shuffle=True)


# ---------------------------------------------------------------------------------------------- validation
def check_grids(lr_grid, hr_grid):
    """Raise ValueError unless ``hr_grid`` covers the LR field with an integer multiple of its pixels."""
    for name, g in (("lr_grid", lr_grid), ("hr_grid", hr_grid)):
        if not isinstance(g, Grid):
            raise ValueError(f"{name} must be a simulator.Grid, got {type(g).__name__}")
    if not math.isclose(lr_grid.field_kpc, hr_grid.field_kpc, rel_tol=1e-9):
        raise ValueError(f"HR field {hr_grid.field_kpc:.6g} kpc differs from the LR field {lr_grid.field_kpc:.6g} kpc")
    if hr_grid.npix % lr_grid.npix:
        raise ValueError(f"HR npix {hr_grid.npix} is not a multiple of LR npix {lr_grid.npix}")


def _settings(n, seed, lr_grid, hr_grid, redshift, val_fraction, block_size):
    """Everything that decides the file's bytes, as plain JSON."""
    return {"layout_version": LAYOUT_VERSION, "n": int(n), "seed": int(seed), "lr_grid": lr_grid.to_dict(),
            "hr_grid": hr_grid.to_dict(), "redshift": float(redshift), "val_fraction": float(val_fraction),
            "block_size": int(block_size)}


def _check_arguments(path, n, seed, redshift, val_fraction, block_size):
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if int(block_size) < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size!r}")
    if not str(path).endswith((".h5", ".hdf5")):
        raise ValueError(f"{path}: expected an .h5 or .hdf5 file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise ValueError(f"{path}: directory {directory} does not exist or is not writable")
    ParameterSpace(redshift=redshift)  # validates the redshift via the cosmology on first use
    kpc_per_arcsec(redshift)


# ---------------------------------------------------------------------------------------------- work directory
def _block_path(work, b):
    return os.path.join(work, f"block_{b:05d}.npz")


def _open_work_dir(path, settings, resume, overwrite):
    """Create (or, with ``resume``, reopen and check) ``<path>.partial``; returns (work dir, meta dict)."""
    work = os.fspath(path) + ".partial"
    if resume and not overwrite and os.path.exists(path) and not os.path.isdir(work):
        raise ValueError(f"{path} is complete: --resume only finishes a partial run"
                         + _finished_differences(path, settings) + "; pass --overwrite to replace it")
    if os.path.exists(path) and not (resume or overwrite):
        raise ValueError(f"{path} exists; pass --overwrite to replace it (or --resume to finish a partial run)")
    if os.path.isdir(work) and not (resume or overwrite):
        raise ValueError(f"{work} holds a partial run; pass --resume to finish it or --overwrite to start again")
    if os.path.isdir(work) and resume:
        try:
            with open(os.path.join(work, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{work}: cannot read meta.json ({exc}); start again with --overwrite") from None
        if meta.get("layout_version") != LAYOUT_VERSION:
            raise ValueError(f"{work}: written by galsr dataset layout {meta.get('layout_version')!r}, this galsr "
                             f"writes layout {LAYOUT_VERSION}; start again with --overwrite")
        differ = [k for k in settings if meta.get(k) != settings[k]]
        if differ:
            raise ValueError(f"{work}: the partial run used other settings ({', '.join(differ)}); resume with the "
                             f"same arguments or start again with --overwrite")
        return work, meta
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    meta = dict(settings, created_utc=_now_utc())
    write_json_atomic(os.path.join(work, "meta.json"), meta, indent=1)
    return work, meta


def _finished_differences(path, settings):
    """Text naming the settings in which the finished file ``path`` differs from ``settings`` ("" if none)."""
    try:
        with h5py.File(path, "r") as f:
            found = {"n": int(f["params"].shape[0]), "seed": int(f.attrs["seed"]),
                     "redshift": float(f.attrs["redshift"]), "val_fraction": float(f.attrs["val_fraction"]),
                     "lr_grid": json.loads(f.attrs["lr_grid"]), "hr_grid": json.loads(f.attrs["hr_grid"])}
    except Exception:  # noqa: BLE001 - not a readable dataset: refused all the same
        return ""
    differ = [f"{k} {found[k]!r} in the file, {settings[k]!r} asked" for k in found if found[k] != settings[k]]
    return f" and was made with other settings ({'; '.join(differ)})" if differ else ""


def _now_utc():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------- simulation
def _simulate_block(args):
    """Worker: LR and HR maps (float32) of one block of parameter rows."""
    params, lr_dict, hr_dict, redshift, threads = args
    if threads:
        import numba

        numba.set_num_threads(threads)
    lr = simulate(params, Grid.from_dict(lr_dict), redshift).astype(np.float32)
    hr = simulate(params, Grid.from_dict(hr_dict), redshift).astype(np.float32)
    return lr, hr


def _save_block(work, b, lr, hr):
    with atomic_path(_block_path(work, b)) as tmp, open(tmp, "wb") as f:
        np.savez(f, lr=lr, hr=hr)


def _load_block(work, b):
    with np.load(_block_path(work, b)) as z:
        return z["lr"], z["hr"]


def _block_ok(work, b, rows, lr_shape, hr_shape):
    """True when block ``b`` exists, loads, and has the expected shapes (a torn file is recomputed)."""
    try:
        lr, hr = _load_block(work, b)
    except Exception:  # noqa: BLE001 - any unreadable block is simply redone
        return False
    return lr.shape == (rows, *lr_shape) and hr.shape == (rows, *hr_shape)


def generate_dataset(path, n, seed, lr_grid=None, hr_grid=None, redshift=0.03, workers=None, resume=False,
                     overwrite=False, progress=True, val_fraction=1 / 3, block_size=64, backend="threads"):
    """Simulate ``n`` galaxies on both grids and write the HDF5 dataset ``path``.

    Parameters
    ----------
    path : str, ``*.h5``; n : int >= 1 galaxies; seed : int, Latin-hypercube seed (the whole file follows from it).
    lr_grid, hr_grid : simulator.Grid (default LR_GRID, HR_GRID); the HR field must equal the LR field and HR npix
        be a multiple of LR npix.
    redshift : float; workers : int (default and at most: all cores); resume : finish ``<path>.partial`` (a
    complete ``path`` is refused, naming the settings it was made with when they differ);
    overwrite : replace an existing file or partial run; progress : tqdm bar (quiet when not on a terminal);
    val_fraction : share of rows marked validation in ``/split``; block_size : rows per block (the unit of work
    and of crash recovery); backend : "threads" (numba threads in this process) or "processes" (a spawn pool,
    one numba thread each).

    Returns ``path``. ``path`` is locked while the run lasts (galsr.simulator.fileio.exclusive_lock): a second
    writer is refused. The parameters are drawn by ParameterSpace.sample_lhs(n, seed) (rows violating the physical
    cuts are rejected and redrawn; the file records how many).
    """
    from galsr.simulator import HR_GRID, LR_GRID

    lr_grid = LR_GRID if lr_grid is None else lr_grid
    hr_grid = HR_GRID if hr_grid is None else hr_grid
    path = os.fspath(path)
    _check_arguments(path, n, seed, redshift, val_fraction, block_size)
    check_grids(lr_grid, hr_grid)
    if backend not in ("threads", "processes"):
        raise ValueError(f"backend must be 'threads' or 'processes', got {backend!r}")
    workers = cap_workers(os.cpu_count() if workers is None else workers)
    settings = _settings(n, seed, lr_grid, hr_grid, redshift, val_fraction, block_size)
    with exclusive_lock(path):
        return _generate_locked(path, n, seed, lr_grid, hr_grid, redshift, workers, resume, overwrite, progress,
                                val_fraction, block_size, backend, settings)


def _generate_locked(path, n, seed, lr_grid, hr_grid, redshift, workers, resume, overwrite, progress, val_fraction,
                     block_size, backend, settings):
    work, meta = _open_work_dir(path, settings, resume, overwrite)

    space = ParameterSpace(redshift=redshift)
    params, draws = space.sample_lhs(n, seed=seed, return_stats=True)
    n_blocks = -(-n // block_size)
    rows = [(b * block_size, min(n, (b + 1) * block_size)) for b in range(n_blocks)]
    lr_shape, hr_shape = (4, lr_grid.npix, lr_grid.npix), (4, hr_grid.npix, hr_grid.npix)
    todo = [b for b in range(n_blocks) if not _block_ok(work, b, rows[b][1] - rows[b][0], lr_shape, hr_shape)]
    _run_blocks(work, todo, rows, params, lr_grid, hr_grid, redshift, workers, backend, progress, n)
    _assemble(path, work, meta, params, draws, rows, lr_grid, hr_grid, redshift, val_fraction, seed)
    shutil.rmtree(work)
    return path


def _run_blocks(work, todo, rows, params, lr_grid, hr_grid, redshift, workers, backend, progress, n):
    """Simulate the blocks in ``todo`` and save each as soon as it is done, with a galaxies/s progress bar."""
    from tqdm.auto import tqdm

    done_rows = n - sum(rows[b][1] - rows[b][0] for b in todo)
    bar = tqdm(total=n, initial=done_rows, unit="gal", desc="galsr generate", disable=None if progress else True,
               smoothing=0.1)
    jobs = [(params[rows[b][0]:rows[b][1]], lr_grid.to_dict(), hr_grid.to_dict(), redshift) for b in todo]
    try:
        if backend == "processes" and workers > 1 and len(todo) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_simulate_block, (*job, 1)): b for b, job in zip(todo, jobs)}
                for fut in as_completed(futures):
                    b = futures[fut]
                    _save_block(work, b, *fut.result())
                    bar.update(rows[b][1] - rows[b][0])
        else:
            import numba

            previous = numba.get_num_threads()
            try:
                for b, job in zip(todo, jobs):
                    _save_block(work, b, *_simulate_block((*job, min(workers, numba.config.NUMBA_NUM_THREADS))))
                    bar.update(rows[b][1] - rows[b][0])
            finally:
                numba.set_num_threads(previous)
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------- assembly
class _Stats:
    """Per-channel min / max / mean / std (and of log10 brightness), accumulated block by block in row order."""

    def __init__(self):
        self.n = 0
        self.lo = np.full(4, np.inf)
        self.hi = np.full(4, -np.inf)
        self.s1 = np.zeros(4)
        self.s2 = np.zeros(4)
        self.b = [np.inf, -np.inf, 0.0, 0.0]

    def add(self, maps):
        m = maps.astype(np.float64)
        self.n += m.shape[0] * m.shape[2] * m.shape[3]
        self.lo = np.minimum(self.lo, m.min(axis=(0, 2, 3)))
        self.hi = np.maximum(self.hi, m.max(axis=(0, 2, 3)))
        self.s1 += m.sum(axis=(0, 2, 3))
        self.s2 += (m * m).sum(axis=(0, 2, 3))
        logb = np.log10(np.clip(m[:, 0], 1e-300, None))
        self.b = [min(self.b[0], logb.min()), max(self.b[1], logb.max()), self.b[2] + logb.sum(),
                  self.b[3] + (logb * logb).sum()]

    def result(self):
        mean = self.s1 / self.n
        std = np.sqrt(np.maximum(self.s2 / self.n - mean**2, 0.0))
        nb = self.n / 4
        bmean = self.b[2] / nb
        return {"min": self.lo, "max": self.hi, "mean": mean, "std": std, "log10_B_min": self.b[0],
                "log10_B_max": self.b[1], "log10_B_mean": bmean,
                "log10_B_std": math.sqrt(max(self.b[3] / nb - bmean**2, 0.0))}


def split_labels(n, seed, val_fraction):
    """The reproducible train (0) / validation (1) labels of ``n`` rows."""
    labels = np.zeros(n, dtype=np.int8)
    n_val = int(round(n * val_fraction))
    labels[np.random.default_rng([int(seed), 1]).permutation(n)[:n_val]] = 1
    return labels


def _grid_attrs(prefix, grid, redshift):
    scale = kpc_per_arcsec(redshift)
    fwhm = lambda v: -1.0 if v is None else v  # noqa: E731
    return {f"{prefix}_grid": json.dumps(grid.to_dict()), f"{prefix}_npix": grid.npix,
            f"{prefix}_pixel_kpc": grid.pixel_kpc, f"{prefix}_pixel_arcsec": grid.pixel_kpc / scale,
            f"{prefix}_oversample": grid.oversample, f"{prefix}_psf_fwhm_pho_kpc": fwhm(grid.psf_fwhm_pho_kpc),
            f"{prefix}_psf_fwhm_kin_kpc": fwhm(grid.psf_fwhm_kin_kpc)}


def _assemble(path, work, meta, params, draws, rows, lr_grid, hr_grid, redshift, val_fraction, seed):
    """Write the HDF5 file from the blocks into a temporary file, set ``complete`` last, rename to ``path``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        galsr_version = version("galsr")
    except PackageNotFoundError:
        galsr_version = "unknown"
    n = params.shape[0]
    with atomic_path(path, mode=0o644) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            d = f.create_dataset("params", data=params, track_times=False)
            d.attrs["names"], d.attrs["units"] = list(PARAM_NAMES), list(PARAM_UNITS)
            d.attrs["bounds"] = ParameterSpace().bounds
            maps = {}
            for name, grid in (("lr", lr_grid), ("hr", hr_grid)):
                shape = (n, 4, grid.npix, grid.npix)
                chunk = (max(1, min(n, (1 << 20) // (4 * 4 * grid.npix**2))), 4, grid.npix, grid.npix)
                maps[name] = f.create_dataset(name, shape=shape, dtype=np.float32, chunks=chunk, track_times=False,
                                              **_COMPRESSION)
                maps[name].attrs["channels"], maps[name].attrs["units"] = list(CHANNELS), list(CHANNEL_UNITS)
            stats = {"lr": _Stats(), "hr": _Stats()}
            for b, (i0, i1) in enumerate(rows):
                lr, hr = _load_block(work, b)
                maps["lr"][i0:i1], maps["hr"][i0:i1] = lr, hr
                stats["lr"].add(lr)
                stats["hr"].add(hr)
            f.create_dataset("split", data=split_labels(n, seed, val_fraction), track_times=False)
            for name, st in stats.items():
                g = f.create_group(f"stats/{name}", track_order=True)
                for key, value in st.result().items():
                    g.create_dataset(key, data=value, track_times=False)
            attrs = {"layout_version": LAYOUT_VERSION, "galsr_version": galsr_version, "seed": int(seed),
                     "sampling": "latin-hypercube", "n_drawn": int(draws["drawn"]),
                     "n_rejected": int(draws["rejected"]), "val_fraction": float(val_fraction),
                     "redshift": float(redshift), "cosmology": repr(COSMOLOGY), "created_utc": meta["created_utc"],
                     **_grid_attrs("lr", lr_grid, redshift), **_grid_attrs("hr", hr_grid, redshift)}
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["complete"] = True  # last: a file without it is never used
