"""galsr's simulator: numba maps of a Dehnen bulge + two exponential discs + NFW halo (physics.md)."""
from .constants import CHANNEL_LABELS, CHANNEL_UNITS, CHANNELS, G
from .cosmology import kpc_per_arcsec, rho_crit
from .grid import Grid
from .params import (N_PARAMS, PARAM_BOUNDS, PARAM_NAMES, PARAM_UNITS, ParameterSpace, as_param_array,
                     halo_scale_radius)
from .simulate import simulate

#: Redshift of the default grids (MaNGA-like).
DEFAULT_REDSHIFT = 0.03
#: The emulator's target: 80 x 80 at 0.5", PSF FWHM 1.3" / 2.5", converged sub-sampling (tests/test_convergence.py).
HR_GRID = Grid.from_arcsec(80, 0.5, DEFAULT_REDSHIFT, 1.3, 2.5, oversample=2, centre_zoom=4)
#: The emulator's input: 20 x 20 at 2" over the same field, point values (oversample 1).
LR_GRID = Grid.from_arcsec(20, 2.0, DEFAULT_REDSHIFT, 1.3, 2.5, oversample=1)

__all__ = ["CHANNELS", "CHANNEL_UNITS", "CHANNEL_LABELS", "G", "kpc_per_arcsec", "rho_crit", "Grid", "N_PARAMS",
           "PARAM_BOUNDS", "PARAM_NAMES", "PARAM_UNITS", "ParameterSpace", "as_param_array", "halo_scale_radius",
           "simulate", "DEFAULT_REDSHIFT", "HR_GRID", "LR_GRID"]
