"""Tiny galsr datasets for the training tests: LR 5 x 5 point values at 2 kpc, HR 20 x 20 pixel averages (3 x 3
sub-points) at 0.5 kpc on the same field, no PSF (the HR averaging is what a network learns within a few epochs).

Uses simulator.generate_dataset when it exists, else writes the same layout (galsr.simulator.dataset_file) from
simulator.simulate directly.
"""
import json

import h5py
import numpy as np

from galsr.simulator import PARAM_BOUNDS, PARAM_NAMES, PARAM_UNITS, Grid, ParameterSpace, simulate

TINY_LR = Grid(5, 2.0)
TINY_HR = Grid(20, 0.5, oversample=3)
REDSHIFT = 0.03


def _stats(maps):
    b = np.log10(maps[:, 0])
    out = {"min": maps.min(axis=(0, 2, 3)), "max": maps.max(axis=(0, 2, 3)), "mean": maps.mean(axis=(0, 2, 3)),
           "std": maps.std(axis=(0, 2, 3))}
    out.update(log10_B_min=b.min(), log10_B_max=b.max(), log10_B_mean=b.mean(), log10_B_std=b.std())
    return out


def write_tiny_dataset(path, n=48, seed=0, lr_grid=TINY_LR, hr_grid=TINY_HR, val_fraction=1 / 3):
    """Write a complete dataset file of ``n`` galaxies; returns str(path)."""
    try:
        from galsr.simulator import generate_dataset
    except ImportError:
        generate_dataset = None
    if generate_dataset is not None:
        generate_dataset(str(path), n=n, seed=seed, lr_grid=lr_grid, hr_grid=hr_grid, redshift=REDSHIFT, workers=1,
                         overwrite=True,
                         progress=False, val_fraction=val_fraction)
        return str(path)
    params = ParameterSpace().sample_lhs(n, seed=seed)
    lr = simulate(params, lr_grid, REDSHIFT).astype(np.float32)
    hr = simulate(params, hr_grid, REDSHIFT).astype(np.float32)
    split = np.zeros(n, dtype=np.int8)
    n_val = int(round(n * val_fraction))
    split[np.random.default_rng(seed).permutation(n)[:n_val]] = 1
    with h5py.File(path, "w") as f:
        d = f.create_dataset("params", data=params)
        d.attrs["names"], d.attrs["units"], d.attrs["bounds"] = list(PARAM_NAMES), list(PARAM_UNITS), PARAM_BOUNDS
        for name, maps in (("lr", lr), ("hr", hr)):
            d = f.create_dataset(name, data=maps)
            d.attrs["channels"] = ["B", "v", "sigma", "ML"]
            d.attrs["units"] = ["Lsun/kpc2", "km/s", "km/s", "Msun/Lsun"]
            g = f.create_group(f"stats/{name}")
            for k, v in _stats(maps.astype(np.float64)).items():
                g.create_dataset(k, data=v)
        f.create_dataset("split", data=split)
        f.attrs.update(layout_version=1, galsr_version="test", seed=seed, sampling="latin-hypercube",
                       n_drawn=n, n_rejected=0, lr_grid=json.dumps(lr_grid.to_dict()),
                       hr_grid=json.dumps(hr_grid.to_dict()), redshift=REDSHIFT, cosmology="test",
                       created_utc="2026-01-01T00:00:00Z", complete=True, val_fraction=val_fraction)
    return str(path)
