"""Forward models for the fit: one interface, two implementations (the emulator, the full simulator).

A forward model maps one parameter vector (18,) to the four maps (4, n, n) on the data's grid, in physical units
(``model(params)``), and with ``model.predict(params)`` also to its own 1-sigma error per pixel in the likelihood's
units (galsr.simulator.fit_units; None for the simulator). Both are picklable, so dynesty's process pool ships them
to its workers once.
"""
import numpy as np

from galsr.simulator import simulate


class ForwardModel:
    """Interface: ``model(params (18,)) -> maps (4, n, n)``; attributes ``name``, ``grid``, ``redshift``,
    ``error_maps`` ((4, n, n) in the likelihood's units: brightness in dex, v and sigma in km/s, M/L in Msun/Lsun;
    or None) and ``describe()`` (a JSON-able dict for run records)."""

    name = "forward"
    error_maps = None
    threads = None

    def __call__(self, params):
        raise NotImplementedError

    def predict(self, params):
        """(maps (4, n, n), errors (4, n, n) in the likelihood's units, or None) at ``params`` (18,)."""
        return self(params), self.error_maps

    def set_num_threads(self, n):
        """CPU threads of this process's numba (and torch) work; remembered, so that a worker process that
        unpickles the model (dynesty's pool starts workers with 'spawn') applies it too."""
        self.threads = int(n)
        self._apply_threads()

    def _apply_threads(self):
        import numba

        numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.threads is not None:
            self._apply_threads()

    def describe(self):
        return {"name": self.name, "grid": self.grid.to_dict(), "redshift": self.redshift}


class SimulatorForward(ForwardModel):
    """The full simulation on ``grid`` (e.g. the data's own grid with converged sub-sampling)."""

    name = "simulator"

    def __init__(self, grid, redshift):
        self.grid, self.redshift = grid, float(redshift)

    def __call__(self, params):
        return simulate(params, self.grid, self.redshift, check=False)


class EmulatorForward(ForwardModel):
    """The super-resolution emulator (galsr.Emulator): LR simulation + network, on its HR grid."""

    name = "emulator"

    def __init__(self, emulator):
        self.emulator = emulator
        self.grid, self.redshift = emulator.hr_grid, float(emulator.redshift)
        self.error_maps = np.asarray(emulator.error_maps, dtype=np.float64)

    def __call__(self, params):
        return self.emulator(params)

    def predict(self, params):
        return self.emulator.predict(params, return_error=True)

    def _apply_threads(self):
        self.emulator.set_num_threads(self.threads)

    def describe(self):
        d = super().describe()
        d.update(path=getattr(self.emulator, "path", None), model=getattr(self.emulator, "model_name", None),
                 hparams=getattr(self.emulator, "hparams", None),
                 error_model=getattr(getattr(self.emulator, "error_model", None), "kind", None))
        return d


def _grid_text(grid, redshift):
    from galsr.simulator import kpc_per_arcsec

    scale = kpc_per_arcsec(redshift)
    psf = lambda v: "none" if v is None else f'{v / scale:.3g}"'  # noqa: E731
    return (f'{grid.npix} x {grid.npix} at {grid.pixel_kpc / scale:.4g}" (PSF {psf(grid.psf_fwhm_pho_kpc)} / '
            f'{psf(grid.psf_fwhm_kin_kpc)}, z = {redshift:g})')


def check_same_grid(galaxy, model):
    """ValueError naming both grids unless ``model`` predicts maps on the galaxy's pixels with its PSFs."""
    g, m = galaxy.grid, model.grid
    same_psf = all((a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-6 * b)
                   for a, b in ((g.psf_fwhm_pho_kpc, m.psf_fwhm_pho_kpc), (g.psf_fwhm_kin_kpc, m.psf_fwhm_kin_kpc)))
    if not (g.same_sky(m) and same_psf and abs(galaxy.redshift - model.redshift) < 1e-9):
        raise ValueError(f"the data grid {_grid_text(g, galaxy.redshift)} differs from the {model.name}'s grid "
                         f"{_grid_text(m, model.redshift)}; use --forward simulator to evaluate on the data's own "
                         f"grid")


def make_forward(galaxy, forward="emulator", emulator=None):
    """The forward model for ``galaxy``: "emulator" (``emulator``: an Emulator, a path, or None for the shipped
    default) or "simulator" (the full simulation on the galaxy's own grid)."""
    if isinstance(forward, ForwardModel):
        model = forward
    elif forward == "simulator":
        model = SimulatorForward(galaxy.grid, galaxy.redshift)
    elif forward == "emulator":
        from galsr.emulator import Emulator

        if emulator is None:
            emulator = Emulator.default()
        elif not isinstance(emulator, Emulator):
            emulator = Emulator.load(emulator)
        model = EmulatorForward(emulator)
    else:
        raise ValueError(f"forward model must be 'emulator' or 'simulator', got {forward!r}")
    check_same_grid(galaxy, model)
    return model
