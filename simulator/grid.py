"""Square sky grids: pixel centres, PSFs and sub-pixel sampling (docs/physics.md#grids-and-convergence)."""
import math
from dataclasses import asdict, dataclass

import numpy as np

from galsr.simulator.cosmology import check_redshift, kpc_per_arcsec
from galsr.simulator.psf import PSF_TRUNCATION_SIGMAS, sampled_kernel

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class Grid:
    """An ``npix`` x ``npix`` grid of square pixels of side ``pixel_kpc`` (kpc), centred on the sky origin.

    ``psf_fwhm_pho_kpc`` / ``psf_fwhm_kin_kpc``: FWHM (kpc) of the photometric (brightness, M/L) and kinematic
    (velocity, dispersion) Gaussian PSFs; None means point values. ``oversample``: s x s sub-points per pixel.
    ``centre_zoom``: adaptive sampling of the centre, 0 = off (the plain central-point rule of docs/physics.md#grids-and-convergence), else
    the Gauss-Legendre order n (1..12) of the block of evaluation cells around the galaxy centre that
    simulator.render integrates at sub-cell accuracy (cusps, tiny bulges and discs) and convolves exactly.
    """

    npix: int
    pixel_kpc: float
    psf_fwhm_pho_kpc: float | None = None
    psf_fwhm_kin_kpc: float | None = None
    oversample: int = 1
    centre_zoom: int = 0

    def __post_init__(self):
        if isinstance(self.npix, bool) or not isinstance(self.npix, (int, np.integer)) or self.npix < 2:
            raise ValueError(f"npix must be an integer >= 2, got {self.npix!r}")
        if not (isinstance(self.pixel_kpc, (int, float, np.floating)) and math.isfinite(self.pixel_kpc)
                and self.pixel_kpc > 0):
            raise ValueError(f"pixel_kpc must be a positive finite number of kpc, got {self.pixel_kpc!r}")
        for name in ("psf_fwhm_pho_kpc", "psf_fwhm_kin_kpc"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be None or a positive number of kpc, got {v!r}")
        if not isinstance(self.oversample, (int, np.integer)) or self.oversample < 1:
            raise ValueError(f"oversample must be an integer >= 1, got {self.oversample!r}")
        if not isinstance(self.centre_zoom, (int, np.integer)) or not 0 <= self.centre_zoom <= 12:
            raise ValueError(f"centre_zoom must be an integer in [0, 12], got {self.centre_zoom!r}")
        object.__setattr__(self, "npix", int(self.npix))
        object.__setattr__(self, "pixel_kpc", float(self.pixel_kpc))
        object.__setattr__(self, "oversample", int(self.oversample))

    @classmethod
    def from_arcsec(cls, npix, pixel_arcsec, redshift=0.03, psf_fwhm_pho_arcsec=None, psf_fwhm_kin_arcsec=None,
                    oversample=1, centre_zoom=0):
        """Grid with pixel size and PSF FWHMs in arcsec, converted to kpc at ``redshift``."""
        if not (pixel_arcsec is not None and math.isfinite(pixel_arcsec) and pixel_arcsec > 0):
            raise ValueError(f"pixel_arcsec must be a positive number, got {pixel_arcsec!r}")
        scale = kpc_per_arcsec(check_redshift(redshift))
        conv = lambda a: None if a is None else float(a) * scale  # noqa: E731
        return cls(npix, pixel_arcsec * scale, conv(psf_fwhm_pho_arcsec), conv(psf_fwhm_kin_arcsec),
                   oversample, centre_zoom)

    @property
    def field_kpc(self):
        """Side of the field of view in kpc."""
        return self.npix * self.pixel_kpc

    @property
    def centres(self):
        """Pixel-centre coordinates (npix,) in kpc, ascending; the same for x (columns) and y (rows)."""
        return (np.arange(self.npix) - (self.npix - 1) / 2.0) * self.pixel_kpc

    @property
    def spacing(self):
        """Evaluation-point spacing dx / oversample in kpc."""
        return self.pixel_kpc / self.oversample

    def psf_sigma(self, which):
        """PSF Gaussian sigma in kpc for ``which`` in {"pho", "kin"}, or None."""
        fwhm = self.psf_fwhm_pho_kpc if which == "pho" else self.psf_fwhm_kin_kpc
        return None if fwhm is None else fwhm * FWHM_TO_SIGMA

    def psf_kernel(self, which, truncation=PSF_TRUNCATION_SIGMAS):
        """1-D PSF kernel sampled at the evaluation spacing, unit sum, reaching >= ``truncation`` sigma (6 unless a
        lighter quadrature rule asks for less); None without a PSF."""
        sigma = self.psf_sigma(which)
        return None if sigma is None else sampled_kernel(sigma, self.spacing, truncation)

    @property
    def pad(self):
        """Padding (evaluation points per side) so that light from outside the field enters the convolution."""
        ks = [k for k in (self.psf_kernel("pho"), self.psf_kernel("kin")) if k is not None]
        return max((len(k) // 2 for k in ks), default=0)

    def with_oversample(self, oversample, centre_zoom=None):
        """The same grid with another sub-sampling."""
        return Grid(self.npix, self.pixel_kpc, self.psf_fwhm_pho_kpc, self.psf_fwhm_kin_kpc, oversample,
                    self.centre_zoom if centre_zoom is None else centre_zoom)

    def to_dict(self):
        """Plain-JSON description (kpc)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def same_sky(self, other, rtol=1e-6):
        """True when ``other`` covers the same pixels (npix and pixel size)."""
        return self.npix == other.npix and math.isclose(self.pixel_kpc, other.pixel_kpc, rel_tol=rtol)
