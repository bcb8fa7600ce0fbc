"""Integral-field data of one galaxy in FITS (format below; README "Fitting a galaxy"): the data model and its reader/writer.

A file holds image extensions FLUX (surface brightness, Lsun/kpc^2), VEL and SIGMA (km/s) and optionally ML
(Msun/Lsun), each with a 1-sigma error extension ``<NAME>_ERR`` in the same unit (or ``<NAME>_IVAR``, the inverse
variance, as SDSS MaNGA's DAP writes it), an optional MASK (non-zero = bad) and NaN for missing pixels. The primary
header gives REDSHIFT, PIXSCALE (arcsec/pixel), PSFPHO and PSFKIN (FWHM, arcsec) and OBJECT; a mock also carries
its true parameters as T00..T17. Maps are [iy, ix] with the sky conventions of docs/physics.md#conventions.
"""
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from galsr.simulator import Grid
from galsr.simulator.limits import regular_file

from galsr.maps_fits import (BUNITS, EXTNAMES, check_new_fits_path, grid_cards, map_hdus, param_cards,
                             params_from_header)

REQUIRED_KEYS = ("REDSHIFT", "PIXSCALE", "PSFPHO", "PSFKIN")
OPTIONAL_MAPS = ("ML",)
TRUTH_PREFIX = "T"
#: Largest image side accepted [pixels]: IFU maps are ~100 pixels; 4096^2 float64 maps are 128 MiB each.
MAX_NPIX = 4096


@dataclass
class Galaxy:
    """Maps, errors and mask of one galaxy on its grid.

    Attributes
    ----------
    maps : (4, n, n) float64, channels (B [Lsun/kpc^2], v [km/s], sigma [km/s], M/L [Msun/Lsun]); NaN = missing
        (an absent M/L map is all NaN).
    errors : (4, n, n) float64, 1-sigma errors in the same units (NaN where the map is missing).
    mask : (n, n) bool, True = bad pixel (applies to every map).
    grid : simulator.Grid of the data (pixel size and PSF FWHMs in kpc; converged sub-sampling when simulated).
    redshift : float.
    object_name : str.
    truth : (18,) float64 true parameters (mocks), or None.
    path : the file it was read from, or None.
    """

    maps: np.ndarray
    errors: np.ndarray
    mask: np.ndarray
    grid: Grid
    redshift: float
    object_name: str = "galaxy"
    truth: np.ndarray | None = None
    path: str | None = field(default=None, compare=False)

    @property
    def npix(self):
        return self.maps.shape[-1]

    def has_map(self, c):
        """True when channel ``c`` has at least one usable pixel."""
        return bool(self.usable(c).any())

    def usable(self, c):
        """(n, n) bool: pixels of channel ``c`` that enter the likelihood (finite data and error, error > 0, not
        masked; for the brightness also positive flux, since it is fitted in log10)."""
        ok = np.isfinite(self.maps[c]) & np.isfinite(self.errors[c]) & (self.errors[c] > 0) & ~self.mask
        if c == 0:
            ok &= self.maps[0] > 0
        return ok


def _refuse(path, what):
    raise ValueError(f"{path}: {what}")


def _data_grid(header, npix, path):
    for key in REQUIRED_KEYS:
        if key not in header:
            _refuse(path, f"primary header has no {key} keyword (required: {', '.join(REQUIRED_KEYS)})")
        try:
            float(header[key])
        except (TypeError, ValueError):
            _refuse(path, f"primary header keyword {key} = {header[key]!r} is not a number")
    z = float(header["REDSHIFT"])
    if not 0 < z < 20:
        _refuse(path, f"REDSHIFT = {z} is outside (0, 20)")
    for key in ("PIXSCALE", "PSFPHO", "PSFKIN"):
        if not float(header[key]) > 0:
            _refuse(path, f"primary header keyword {key} = {header[key]} must be > 0 (arcsec)")
    # the simulator forward model evaluates on this grid with the converged sub-sampling of the default HR grid
    from galsr.simulator import HR_GRID

    grid = Grid.from_arcsec(npix, float(header["PIXSCALE"]), z, float(header["PSFPHO"]), float(header["PSFKIN"]),
                            oversample=HR_GRID.oversample, centre_zoom=HR_GRID.centre_zoom)
    return grid, z


def _check_image_header(hdu, name, path):
    """Refuse, before any pixel is read, an image whose header claims more than MAX_NPIX pixels per side or more
    bytes than the file holds after the header (a FITS file cut short)."""
    h = hdu.header
    dims = [h.get("NAXIS1"), h.get("NAXIS2")]
    if h.get("NAXIS") != 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        _refuse(path, f"extension {name} is not a 2-D image (NAXIS = {h.get('NAXIS')!r}, sizes {dims})")
    if max(dims) > MAX_NPIX:
        _refuse(path, f"extension {name} claims a {dims[1]} x {dims[0]} image, more than the {MAX_NPIX} x "
                      f"{MAX_NPIX} accepted")
    if isinstance(hdu, fits.CompImageHDU):  # compressed: the header gives the decompressed size
        return
    need = hdu.fileinfo()["datLoc"] + abs(int(h.get("BITPIX", 8))) // 8 * dims[0] * dims[1]
    have = os.path.getsize(path)
    if need > have:
        _refuse(path, f"extension {name} is truncated: its header announces data up to byte {need:,}, the file "
                      f"ends at byte {have:,}")


def _nonfinite_text(values):
    """How a map without a finite value is filled (str): "all NaN", "all +inf", or the counts of each kind."""
    kinds = [(int(np.isnan(values).sum()), "NaN"), (int(np.isposinf(values).sum()), "+inf"),
             (int(np.isneginf(values).sum()), "-inf")]
    present = [(n, k) for n, k in kinds if n]
    if len(present) == 1:
        return f"is all {present[0][1]}"
    return "has no finite value (" + ", ".join(f"{n} {k}" for n, k in present) + ")"


def _read_image(hdul, name, path, shape=None):
    _check_image_header(hdul[name], name, path)
    data = hdul[name].data
    if data is None or np.ndim(data) != 2:
        _refuse(path, f"extension {name} is not a 2-D image (shape {None if data is None else np.shape(data)})")
    data = np.asarray(data, dtype=np.float64)
    if data.shape[0] != data.shape[1]:
        _refuse(path, f"extension {name} is not square: shape {data.shape}")
    if shape is not None and data.shape != shape:
        _refuse(path, f"extension {name} has shape {data.shape}, expected {shape} like FLUX")
    return data


def _read_error(hdul, name, path, shape):
    if f"{name}_ERR" in hdul:
        err = _read_image(hdul, f"{name}_ERR", path, shape)
        bad = np.isfinite(err) & (err <= 0)
        if bad.any():
            _refuse(path, f"extension {name}_ERR has {int(bad.sum())} zero or negative errors (mask those pixels "
                          f"with MASK or NaN instead)")
        return err
    if f"{name}_IVAR" in hdul:
        ivar = _read_image(hdul, f"{name}_IVAR", path, shape)
        if (np.isfinite(ivar) & (ivar < 0)).any():
            _refuse(path, f"extension {name}_IVAR has negative inverse variances")
        with np.errstate(divide="ignore"):
            return np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)
    _refuse(path, f"extension {name} has no error extension {name}_ERR (or {name}_IVAR)")


def read_galaxy(path):
    """Read a galaxy FITS file into a :class:`Galaxy`; ValueError naming the file and the extension or header key
    for anything missing, mis-shaped, of the wrong unit, without a finite value or not FITS, for anything but a
    regular file, and for images larger than MAX_NPIX per side or cut short (checked from the headers before any
    pixel is read)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file")
    regular_file(path, "galaxy file")  # a FIFO or device would be read forever
    try:
        with warnings.catch_warnings():  # a truncated file is refused below, naming the extension
            warnings.simplefilter("ignore", AstropyWarning)
            hdul = fits.open(path, memmap=False)
            hdul.verify("exception")
    except Exception as exc:  # noqa: BLE001 - astropy raises several types for non-FITS input
        raise ValueError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from None
    with hdul:
        if "FLUX" not in hdul:
            _refuse(path, "no FLUX extension (required: FLUX, VEL, SIGMA with _ERR or _IVAR; optional ML, MASK)")
        flux = _read_image(hdul, "FLUX", path)
        shape = flux.shape
        maps = np.full((4, *shape), np.nan)
        errors = np.full((4, *shape), np.nan)
        for c, name in enumerate(EXTNAMES):
            if name not in hdul:
                if name in OPTIONAL_MAPS:
                    continue
                _refuse(path, f"no {name} extension (required: FLUX, VEL, SIGMA)")
            unit = hdul[name].header.get("BUNIT")
            if unit is not None and str(unit).replace(" ", "") != BUNITS[c]:
                _refuse(path, f"extension {name} has BUNIT = {unit!r}, expected {BUNITS[c]!r}")
            maps[c] = _read_image(hdul, name, path, shape)
            if not np.isfinite(maps[c]).any():
                _refuse(path, f"extension {name} {_nonfinite_text(maps[c])}")
            errors[c] = _read_error(hdul, name, path, shape)
        mask = np.zeros(shape, dtype=bool)
        if "MASK" in hdul:
            mask = _read_image(hdul, "MASK", path, shape) != 0
        header = hdul[0].header
        grid, z = _data_grid(header, shape[0], path)
        truth = params_from_header(header, TRUTH_PREFIX)
        galaxy = Galaxy(maps, errors, mask, grid, z, str(header.get("OBJECT", os.path.basename(path))), truth, path)
    for c in range(3):
        if not galaxy.has_map(c):
            _refuse(path, f"extension {EXTNAMES[c]} has no usable pixel (all NaN, masked or without error)")
    return galaxy


def write_galaxy(path, galaxy, overwrite=False):
    """Write ``galaxy`` in the input format (maps with BUNIT, ``<NAME>_ERR`` errors, MASK, header keys, truth).
    Channels whose map is all NaN (e.g. no M/L) are left out. The file is written atomically."""
    from galsr import __version__
    from galsr.simulator.fileio import atomic_path

    path = os.fspath(path)
    check_new_fits_path(path, overwrite)
    primary = fits.PrimaryHDU()
    primary.header["OBJECT"] = galaxy.object_name
    primary.header["ORIGIN"] = f"galsr {__version__}"
    for card in grid_cards(galaxy.grid, galaxy.redshift)[:7]:
        primary.header[card[0]] = card[1:]
    if galaxy.truth is not None:
        for key, value, comment in param_cards(galaxy.truth, TRUTH_PREFIX):
            primary.header[key] = (value, "true " + comment)
    hdus = [primary]
    for c, (data_hdu, name) in enumerate(zip(map_hdus(galaxy.maps, galaxy.grid, galaxy.redshift), EXTNAMES)):
        if not np.isfinite(galaxy.maps[c]).any():
            continue
        err = fits.ImageHDU(np.asarray(galaxy.errors[c], dtype=np.float64), name=f"{name}_ERR")
        err.header["BUNIT"] = BUNITS[c]
        err.header["HDUCLAS2"] = "ERROR"
        err.header["ERRDATA"] = ("1-sigma", "error type")
        hdus += [data_hdu, err]
    hdus.append(fits.ImageHDU(galaxy.mask.astype(np.uint8), name="MASK"))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    return path
