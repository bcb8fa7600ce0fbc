"""galsr's simulator: numba maps of a Dehnen bulge + two exponential discs + NFW halo (docs/physics.md)."""
from galsr.simulator.constants import CHANNEL_LABELS, CHANNEL_UNITS, CHANNELS, G
from galsr.simulator.cosmology import kpc_per_arcsec, rho_crit
from galsr.simulator.grid import Grid
from galsr.simulator.params import (COMPACT_GALAXY, EXAMPLE_GALAXY, N_PARAMS, PARAM_BOUNDS, PARAM_NAMES, PARAM_UNITS, ParameterSpace, as_param_array,
                     halo_scale_radius)
from galsr.simulator.simulate import simulate

#: Redshift of the default grids (MaNGA-like).
DEFAULT_REDSHIFT = 0.03


def default_grids(redshift=DEFAULT_REDSHIFT, psf_fwhm_pho_arcsec=1.3, psf_fwhm_kin_arcsec=2.5, fov_arcsec=40.0,
                  hr_npix=80, lr_npix=20):
    """(HR, LR) grids (Grid) on one square field of ``fov_arcsec`` at ``redshift``: by default 80 x 80 at 0.5" with
    the converged sub-sampling measured in tests/test_convergence.py (oversample 2 + adaptive centre), and 20 x 20
    at 2" (point values), PSF FWHMs in arcsec. ValueError for fewer than 2 pixels a side."""
    for name, npix in (("hr_npix", hr_npix), ("lr_npix", lr_npix)):
        if isinstance(npix, bool) or int(npix) != npix or npix < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {npix!r}")
    if not fov_arcsec > 0:
        raise ValueError(f"fov_arcsec must be > 0, got {fov_arcsec!r}")
    hr = Grid.from_arcsec(int(hr_npix), fov_arcsec / hr_npix, redshift, psf_fwhm_pho_arcsec, psf_fwhm_kin_arcsec,
                          oversample=2, centre_zoom=4)
    lr = Grid.from_arcsec(int(lr_npix), fov_arcsec / lr_npix, redshift, psf_fwhm_pho_arcsec, psf_fwhm_kin_arcsec,
                          oversample=1)
    return hr, lr


#: The emulator's target and input grids at z = 0.03, PSF FWHM 1.3" (photometry) and 2.5" (kinematics).
HR_GRID, LR_GRID = default_grids()

from galsr.simulator.dataset import generate_dataset  # noqa: E402  (uses the grids above)
from galsr.simulator.dataset_file import GalaxyDataset, load_dataset  # noqa: E402

__all__ = ["CHANNELS", "CHANNEL_UNITS", "CHANNEL_LABELS", "G", "kpc_per_arcsec", "rho_crit", "Grid", "N_PARAMS",
           "PARAM_BOUNDS", "PARAM_NAMES", "PARAM_UNITS", "ParameterSpace", "as_param_array", "halo_scale_radius",
           "simulate", "DEFAULT_REDSHIFT", "HR_GRID", "LR_GRID", "default_grids", "EXAMPLE_GALAXY", "COMPACT_GALAXY",
           "generate_dataset", "load_dataset", "GalaxyDataset"]
