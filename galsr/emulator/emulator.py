"""The galsr emulator: HR maps of galaxies from their 18 parameters, in about a millisecond.

``Emulator(params)`` simulates the cheap LR maps (simulator.simulate on the emulator's LR grid), normalises them
with the transform stored in the emulator file, super-resolves them with the network and inverts the transform:
HR maps (B [Lsun/kpc^2], v [km/s], sigma [km/s], M/L [Msun/Lsun]) on the emulator's HR grid, float64 numpy.
"""
import os
from importlib import resources

import numpy as np
import torch

from galsr.emulator.error_model import error_model_from_file
from galsr.simulator.centre_patch import check_npatch, paste_patch, read_patch, rule_from_dict, simulate_with_patch

DEFAULT_RESOURCE = "default.galsr"


class Emulator:
    """A trained super-resolution emulator (see ``training.emulator_file`` for the file format).

    Attributes:
        lr_grid, hr_grid: simulator.Grid of the network's input and output maps.
        redshift: float.
        param_names: tuple of the 18 parameter names (simulator.PARAM_NAMES order).
        bounds: (18, 2) float64 array, the parameter box the emulator was trained on.
        error_maps: (4, n_hr, n_hr) float64, per-pixel RMS emulator error on the validation set (brightness in
            dex, v and sigma in km/s, M/L in Msun/Lsun), the same for every galaxy.
        error_model: galsr.emulator.error_model.StaticErrorModel (the error maps) or BinnedErrorModel (calibrated
            per galaxy by distance from its centre, its bulge size and how far the network disagrees with the
            central patch): what ``predict(..., return_error=True)`` and a fit use.
        centre_patch: int, side in HR pixels of the central patch simulated directly instead of super-resolved
            (galsr.simulator.centre_patch; 0 = none, older files).
        patch_rule: simulator.render.QuadratureRule of the patch, as the file records it (files that record none:
            centre_patch.LEGACY_PATCH_RULE).
        metadata: dict, everything the file stores (training config, validation metrics, data fingerprint, ...).
        transform: training.transform.MapTransform.
        model_name, hparams: the network.
        path: str, the file it was loaded from.
    """

    def __init__(self, emulator_file, num_threads=None):
        from galsr.simulator import PARAM_NAMES, Grid, ParameterSpace
        from galsr.emulator.architectures import inference_model
        from galsr.emulator.transform import MapTransform

        ef = emulator_file
        meta = ef.metadata
        self.path = ef.path
        self.metadata = meta
        self.model_name, self.hparams = ef.model_name, dict(ef.hparams)
        try:
            self.lr_grid = Grid.from_dict(meta["lr_grid"])
            self.hr_grid = Grid.from_dict(meta["hr_grid"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: invalid lr_grid/hr_grid in metadata ({exc})") from None
        if self.hr_grid.npix != 4 * self.lr_grid.npix:
            raise ValueError(f"{self.path}: HR grid npix {self.hr_grid.npix} is not 4 x LR grid npix "
                             f"{self.lr_grid.npix}")
        self.redshift = float(meta["redshift"])
        self.param_names = tuple(meta["param_names"])
        if self.param_names != tuple(PARAM_NAMES):
            raise ValueError(f"{self.path}: parameter names {list(self.param_names)} differ from this galsr's "
                             f"{list(PARAM_NAMES)}")
        self.bounds = np.asarray(meta["bounds"], dtype=np.float64)
        if self.bounds.shape != (len(PARAM_NAMES), 2):
            raise ValueError(f"{self.path}: bounds have shape {self.bounds.shape}, expected ({len(PARAM_NAMES)}, 2)")
        self._space = ParameterSpace(bounds=self.bounds, redshift=self.redshift)
        self.transform = MapTransform.from_dict(meta["transform"])
        self.channels = self.transform.channels
        self.error_maps = ef.tensors["error_maps"].double().numpy()
        try:
            self.centre_patch = check_npatch(meta.get("centre_patch", 0), self.hr_grid.npix, allow_zero=True)
            self.patch_rule = rule_from_dict(meta.get("patch_rule"))
            self.error_model = error_model_from_file(meta, ef.tensors, self.hr_grid, self.lr_grid,
                                                     self.centre_patch)
        except ValueError as exc:
            raise ValueError(f"{self.path}: {exc}") from None
        self._model = ef.build_model()
        self._fast = inference_model(self._model, self.lr_grid.npix)
        if num_threads is not None:
            self.set_num_threads(num_threads)

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, path, num_threads=None):
        """Load an emulator file (``*.galsr``); ValueError for foreign, pickled, tampered or mismatched files."""
        from galsr.emulator.file_format import load_emulator

        return cls(load_emulator(path), num_threads=num_threads)

    @classmethod
    def default(cls, num_threads=None):
        """The emulator shipped inside the package (galsr/data/default.galsr)."""
        path = default_path()
        if not os.path.exists(path):
            raise ValueError(f"the default emulator {path!r} is not installed; train one with `galsr train`")
        return cls.load(path, num_threads=num_threads)

    @staticmethod
    def set_num_threads(n):
        """CPU threads of the network (torch) and of the LR simulation (numba), process-wide; 1 gives the lowest
        batch-1 latency and is what each worker of a parallel fit should use."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"num_threads must be an integer >= 1, got {n!r}")
        import numba

        # numba first: with its OpenMP threading layer, numba.set_num_threads also sets the OpenMP thread count
        # that torch uses, so setting torch last is what makes both stick
        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(int(n))

    # ------------------------------------------------------------------ evaluation
    def check_grid(self, grid):
        """Raise ValueError unless ``grid`` (simulator.Grid) covers the same pixels as the emulator's HR grid."""
        if not self.hr_grid.same_sky(grid):
            raise ValueError(f"grid {grid.npix} x {grid.npix} pixels of {grid.pixel_kpc:.4g} kpc does not match "
                             f"the emulator's HR grid ({self.hr_grid.npix} x {self.hr_grid.npix} pixels of "
                             f"{self.hr_grid.pixel_kpc:.4g} kpc)")

    def validate(self, params):
        """params as (N, 18) float64 and whether a single galaxy was given. ValueError naming the parameter outside
        the bounds, or naming the physical cut (R_b <= R_d2, R_d1 <= R_d2, r_s >= R_d2) that a row violates: the
        network never saw such galaxies, so it refuses them rather than extrapolate (a fit's likelihood is -inf
        there before the emulator is called)."""
        single = isinstance(params, dict) or np.ndim(params) == 1
        arr = self._space.validate(params)
        if not self._space.satisfies_cuts(arr).all():
            row, text = self._space.cut_violations(arr)[0]
            raise ValueError(f"parameters of row {row} violate a physical cut the emulator was trained within: {text}")
        return arr, single

    def simulate_lr(self, params):
        """LR maps (N, 4, n_lr, n_lr) float64 of validated parameters (N, 18)."""
        from galsr.simulator import simulate

        return simulate(params, self.lr_grid, self.redshift, check=False)

    def super_resolve(self, lr_maps, batch_size=256):
        """The network's HR maps (N, 4, n_hr, n_hr) float64 from physical LR maps (N, 4, n_lr, n_lr) on ``lr_grid``
        (without the central patch, which needs the parameters: :meth:`predict` pastes it)."""
        lr_maps = np.asarray(lr_maps, dtype=np.float64)
        single = lr_maps.ndim == 3
        if single:
            lr_maps = lr_maps[None]
        n_lr = self.lr_grid.npix
        if lr_maps.ndim != 4 or lr_maps.shape[1:] != (len(self.channels), n_lr, n_lr):
            raise ValueError(f"LR maps must have shape (N, {len(self.channels)}, {n_lr}, {n_lr}), got "
                             f"{lr_maps.shape}")
        x = torch.from_numpy(self.transform.forward(lr_maps).astype(np.float32))
        with torch.inference_mode():
            if len(x) <= batch_size:
                y = self._fast(x)
            else:
                y = torch.cat([self._fast(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
            out = self.transform.inverse_(y).astype(np.float64)
        return out[0] if single else out

    def __call__(self, params):
        """HR maps of galaxies: (18,) or dict -> (4, n_hr, n_hr); (N, 18) -> (N, 4, n_hr, n_hr); float64,
        physical units. ValueError for parameters outside the emulator's bounds (naming the parameter) or violating
        the physical cuts (naming the cut), see :meth:`validate`."""
        return self.predict(params)

    def predict(self, params, return_error=False):
        """HR maps as ``emulator(params)``; with ``return_error`` the pair (maps, errors): the emulator's own
        predicted 1-sigma error per pixel for these parameters, same shape, in the likelihood's units (brightness
        in dex, v and sigma in km/s, M/L in Msun/Lsun; see ``error_model``)."""
        arr, single = self.validate(params)
        out, under = self.emulate(arr, keep_network=return_error)
        if not return_error:
            return out[0] if single else out
        err = self.error_model.predict(arr, out, under)
        return (out[0], err[0]) if single else (out, err)

    def emulate(self, arr, keep_network=False):
        """HR maps (N, 4, n_hr, n_hr) of validated parameter rows (N, 18) and, with ``keep_network`` and a central
        patch, a copy of the network's own values where the patch replaced them (N, 4, P, P; NaN off the map),
        which the error model compares with the patch; else None."""
        if not self.centre_patch:
            return self.super_resolve(self.simulate_lr(arr)), None
        # the LR maps and the central patches in one simulation call per galaxy
        lr, patches, origins = simulate_with_patch(arr, self.lr_grid, self.hr_grid, self.centre_patch,
                                                   self.redshift, self.patch_rule)
        out = self.super_resolve(lr)
        under = np.stack([read_patch(m, o, self.centre_patch) for m, o in zip(out, origins)]) if keep_network \
            else None
        for m, patch, origin in zip(out, patches, origins):
            paste_patch(m, patch, origin)
        return out, under

    @property
    def n_parameters(self):
        """Number of network weights (int)."""
        return int(sum(p.numel() for p in self._model.parameters()))

    def __repr__(self):
        return (f"Emulator({self.model_name} {self.hparams}, LR {self.lr_grid.npix}^2 -> HR {self.hr_grid.npix}^2, "
                f"z={self.redshift:g}, path={self.path!r})")


def default_path():
    """Path of the shipped default emulator file (galsr/data/default.galsr)."""
    return str(resources.files("galsr").joinpath("data", DEFAULT_RESOURCE))
