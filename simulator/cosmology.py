"""Angular scale and critical density for the fixed cosmology of docs/physics.md#units-and-constants (FlatLambdaCDM H0=70, Om0=0.3)."""
import math
from functools import lru_cache

import astropy.units as u
from astropy.cosmology import FlatLambdaCDM

from galsr.simulator.constants import G

COSMOLOGY = FlatLambdaCDM(H0=70, Om0=0.3)


def check_redshift(redshift):
    """Return ``redshift`` as a float, or raise ValueError if it is not a finite number in (0, 20)."""
    try:
        z = float(redshift)
    except (TypeError, ValueError):
        raise ValueError(f"redshift must be a number, got {redshift!r}") from None
    if not (0.0 < z < 20.0):
        raise ValueError(f"redshift must be in (0, 20), got {z!r}")
    return z


@lru_cache(maxsize=64)
def kpc_per_arcsec(redshift):
    """Proper kpc per arcsec at ``redshift`` from the angular-diameter distance (0.6007 at z = 0.03)."""
    z = check_redshift(redshift)
    return float(COSMOLOGY.angular_diameter_distance(z).to_value(u.kpc) * (1 * u.arcsec).to_value(u.rad))


@lru_cache(maxsize=64)
def rho_crit(redshift):
    """Critical density 3 H(z)^2 / (8 pi G) in Msun/kpc^3 with the spec's G (139.8 at z = 0.03)."""
    z = check_redshift(redshift)
    h = COSMOLOGY.H(z).to_value(u.km / u.s / u.kpc)
    return 3.0 * h * h / (8.0 * math.pi * G)
