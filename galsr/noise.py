"""The noise model of mocks (numpy only, so the command line can show its defaults without loading the simulator).

Noise model (per pixel, from the brightness B of the noiseless maps and the signal-to-noise ``snr`` that a pixel
of the median brightness of the galaxy's brighter half has). Statistical part:
    S/N(pixel)  = min(snr * sqrt(B / B_ref), snr_max)      (background-limited photometry, with a ceiling)
    brightness  error = B / S/N                            (i.e. 1 / (S/N ln 10) dex)
    velocity    error = max(2, 10 / S/N * snr / 3) km/s    (a few km/s in bright pixels)
    dispersion  error = 1.2 x the velocity error
    M/L         error = 5 % of M/L x snr / S/N
Systematic floors, added in quadrature per map (:class:`NoiseModel`): a fractional flux-calibration error on B,
absolute floors on v and sigma [km/s], and a floor on M/L in dex (stellar-population M/L). The defaults
(:data:`MANGA`) are typical of SDSS-IV MaNGA (sources in docs/fitting.md "Noise model"); ``NoiseModel.none()``
(floors 0, no ceiling) is the earlier, floor-free model. Pixels whose uncapped S/N < 3 are masked. Noise is
Gaussian, drawn from numpy's default_rng(seed).
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

MIN_SNR = 3.0


@dataclass(frozen=True)
class NoiseModel:
    """Systematic error floors and S/N ceiling of a mock (added in quadrature to the statistical errors).

    Attributes:
        floor_flux: float, fractional brightness error floor (flux calibration; 0.03 = 3 %).
        floor_vel: float, velocity error floor [km/s].
        floor_sigma: float, dispersion error floor [km/s].
        floor_ml_dex: float, M/L error floor [dex] (stellar-population M/L).
        snr_max: float or None, ceiling on a pixel's statistical S/N (None: no ceiling).
    """

    floor_flux: float = 0.03
    floor_vel: float = 3.0
    floor_sigma: float = 5.0
    floor_ml_dex: float = 0.1
    snr_max: float | None = 100.0

    def __post_init__(self):
        for name in ("floor_flux", "floor_vel", "floor_sigma", "floor_ml_dex"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.snr_max is not None and not self.snr_max > 0:
            raise ValueError(f"snr_max must be > 0 (or None for no ceiling), got {self.snr_max!r}")

    @classmethod
    def none(cls):
        """No floors and no ceiling: the statistical errors only (the earlier mock model)."""
        return cls(0.0, 0.0, 0.0, 0.0, None)

    def to_dict(self):
        return asdict(self)


#: Defaults typical of SDSS-IV MaNGA (see docs/fitting.md "Noise model" for the sources).
MANGA = NoiseModel()


def mock_errors(maps, snr, noise=MANGA):
    """(errors (4, n, n) in the maps' units, mask (n, n) bool) for noiseless maps (4, n, n) at reference
    signal-to-noise ``snr`` with the floors and ceiling of ``noise`` (:class:`NoiseModel`)."""
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr!r}")
    b = maps[0]
    ref = np.median(b[b >= np.median(b)])
    raw_snr = snr * np.sqrt(b / ref)
    pix_snr = raw_snr if noise.snr_max is None else np.minimum(raw_snr, noise.snr_max)
    errors = np.empty_like(maps)
    errors[0] = b * np.hypot(1.0 / pix_snr, noise.floor_flux)
    stat_v = np.maximum(2.0, 10.0 / pix_snr * snr / 3.0)
    errors[1] = np.hypot(stat_v, noise.floor_vel)
    errors[2] = np.hypot(1.2 * stat_v, noise.floor_sigma)
    errors[3] = maps[3] * np.hypot(0.05 * snr / pix_snr, math.log(10.0) * noise.floor_ml_dex)
    return errors, raw_snr < MIN_SNR
