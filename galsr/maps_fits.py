"""FITS conventions shared by every galsr file that holds maps (simulated maps, mock galaxies, best-fit models).

One image extension per map, EXTNAME FLUX / VEL / SIGMA / ML with BUNIT, [iy, ix] with x and y ascending
(docs/physics.md#conventions), a linear WCS in kpc from the galaxy grid's centre, and the grid and redshift in every header. The
18 parameters go in the primary header as P00..P17 (comment: name and unit).
"""
import numpy as np
from astropy.io import fits

from galsr.simulator import CHANNEL_LABELS, PARAM_NAMES, PARAM_UNITS, Grid, kpc_per_arcsec

EXTNAMES = ("FLUX", "VEL", "SIGMA", "ML")
BUNITS = ("Lsun/kpc2", "km/s", "km/s", "Msun/Lsun")  # FITS-standard spellings of simulator.CHANNEL_UNITS


def param_key(i):
    """Header keyword of parameter ``i`` (P00..P17)."""
    return f"P{i:02d}"


def grid_cards(grid, redshift):
    """Header cards describing ``grid`` at ``redshift``: pixel scale, PSFs (arcsec and kpc) and a kpc WCS."""
    scale = kpc_per_arcsec(redshift)
    fwhm = lambda v: -1.0 if v is None else v / scale  # noqa: E731  (-1: no PSF)
    cards = [
        ("REDSHIFT", float(redshift), "redshift of the galaxy"),
        ("PIXSCALE", grid.pixel_kpc / scale, "[arcsec/pixel] pixel scale"),
        ("PIXKPC", grid.pixel_kpc, "[kpc/pixel] pixel scale"),
        ("PSFPHO", fwhm(grid.psf_fwhm_pho_kpc), "[arcsec] FWHM of the photometric PSF (-1: none)"),
        ("PSFKIN", fwhm(grid.psf_fwhm_kin_kpc), "[arcsec] FWHM of the kinematic PSF (-1: none)"),
        ("OVERSAMP", grid.oversample, "evaluation sub-points per pixel side"),
        ("CENZOOM", grid.centre_zoom, "adaptive-centre Gauss-Legendre order (0: off)"),
    ]
    for axis in (1, 2):
        cards += [(f"CTYPE{axis}", "X" if axis == 1 else "Y", "sky offset from the field centre"),
                  (f"CUNIT{axis}", "kpc", ""), (f"CRPIX{axis}", (grid.npix + 1) / 2.0, ""),
                  (f"CRVAL{axis}", 0.0, ""), (f"CDELT{axis}", grid.pixel_kpc, "")]
    return cards


def grid_from_header(header, npix, path="<header>"):
    """The Grid described by a header written with :func:`grid_cards` (kpc), or ValueError naming the key."""
    for key in ("REDSHIFT", "PIXSCALE", "PSFPHO", "PSFKIN"):
        if key not in header:
            raise ValueError(f"{path}: primary header has no {key} keyword")
    z = float(header["REDSHIFT"])
    psf = lambda v: None if float(v) <= 0 else float(v)  # noqa: E731
    return Grid.from_arcsec(int(npix), float(header["PIXSCALE"]), z, psf(header["PSFPHO"]), psf(header["PSFKIN"]),
                            int(header.get("OVERSAMP", 1)), int(header.get("CENZOOM", 0))), z


def param_cards(params, prefix="P"):
    """Cards P00..P17 = parameter values, each commented with its name and unit."""
    params = np.asarray(params, dtype=np.float64).reshape(-1)
    return [(f"{prefix}{i:02d}", float(v), f"{PARAM_NAMES[i]} [{PARAM_UNITS[i] or '-'}]")
            for i, v in enumerate(params)]


def params_from_header(header, prefix="P"):
    """The parameter vector (18,) stored by :func:`param_cards`, or None when the header has none."""
    keys = [f"{prefix}{i:02d}" for i in range(len(PARAM_NAMES))]
    if not all(k in header for k in keys):
        return None
    return np.array([float(header[k]) for k in keys])


def map_hdus(maps, grid, redshift, extra_cards=()):
    """Image HDUs FLUX, VEL, SIGMA, ML for maps (4, n, n)."""
    hdus = []
    for c, name in enumerate(EXTNAMES):
        hdu = fits.ImageHDU(np.asarray(maps[c], dtype=np.float64), name=name)
        hdu.header["BUNIT"] = BUNITS[c]
        hdu.header["COMMENT"] = CHANNEL_LABELS[c]
        for card in list(grid_cards(grid, redshift)) + list(extra_cards):
            hdu.header[card[0]] = card[1:]
        hdus.append(hdu)
    return hdus


FITS_SUFFIXES = (".fits", ".fit", ".fits.gz")


def check_new_fits_path(path, overwrite):
    """ValueError unless ``path`` names a FITS file (by its extension) that may be written: absent, or
    ``overwrite``."""
    import os

    if not str(path).lower().endswith(FITS_SUFFIXES):
        raise ValueError(f"{path}: expected a FITS file name ({', '.join(FITS_SUFFIXES)})")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")


def write_maps(path, maps, grid, redshift, params=None, object_name="galsr model", overwrite=False):
    """Write simulated maps (4, n, n) as FITS: primary header with the grid, redshift and parameters."""
    from galsr import __version__
    from galsr.simulator.fileio import atomic_path

    maps = np.asarray(maps)
    if maps.shape != (4, grid.npix, grid.npix):
        raise ValueError(f"maps must have shape (4, {grid.npix}, {grid.npix}), got {maps.shape}")
    check_new_fits_path(path, overwrite)
    primary = fits.PrimaryHDU()
    primary.header["OBJECT"] = object_name
    primary.header["ORIGIN"] = f"galsr {__version__}"
    for card in grid_cards(grid, redshift)[:7]:
        primary.header[card[0]] = card[1:]
    if params is not None:
        for card in param_cards(params):
            primary.header[card[0]] = card[1:]
    with atomic_path(path) as tmp:
        fits.HDUList([primary, *map_hdus(maps, grid, redshift)]).writeto(tmp, overwrite=True)
    return path


def read_maps(path):
    """(maps (4, n, n) float64, grid, redshift, params or None) from a file written by :func:`write_maps`."""
    with fits.open(path) as hdul:
        maps = np.stack([np.asarray(hdul[name].data, dtype=np.float64) for name in EXTNAMES])
        grid, z = grid_from_header(hdul[0].header, maps.shape[-1], path)
        return maps, grid, z, params_from_header(hdul[0].header)
