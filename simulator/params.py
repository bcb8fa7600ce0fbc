"""The 18 model parameters: names, units, prior box, physical cuts and Latin-hypercube sampling (docs/physics.md#parameters-and-prior)."""
import math
from dataclasses import dataclass, field

import numpy as np

from galsr.simulator.cosmology import rho_crit
from galsr.simulator.halo import r200_kpc

PARAM_NAMES = (
    "log10_bulge_mass", "log10_bulge_radius", "gamma", "ML_b",
    "log10_disc1_mass", "log10_disc1_radius", "ML_d1", "k1",
    "log10_disc2_mass", "log10_disc2_radius", "ML_d2", "k2",
    "log10_halo_fraction", "concentration", "x0", "y0", "orientation", "inclination",
)
PARAM_UNITS = (
    "dex(Msun)", "dex(kpc)", "", "Msun/Lsun",
    "dex(Msun)", "dex(kpc)", "Msun/Lsun", "",
    "dex(Msun)", "dex(kpc)", "Msun/Lsun", "",
    "dex", "", "kpc", "kpc", "rad", "rad",
)
PARAM_BOUNDS = np.array([
    [8.5, 12.0], [-2.0, 1.5], [0.0, 2.4], [0.1, 20.0],
    [8.5, 12.0], [-2.0, 1.5], [0.1, 20.0], [0.01, 1.0],
    [8.5, 12.0], [-2.0, 1.5], [0.1, 20.0], [0.01, 1.0],
    [1.0, 2.7], [5.0, 15.0], [-2.0, 2.0], [-2.0, 2.0], [-math.pi, math.pi], [0.1, math.pi / 3],
])
PARAM_BOUNDS.setflags(write=False)
N_PARAMS = len(PARAM_NAMES)
#: A typical disc galaxy inside the box and the cuts (the default of ``galsr simulate``).
EXAMPLE_GALAXY = {
    "log10_bulge_mass": 10.3, "log10_bulge_radius": -0.3, "gamma": 1.2, "ML_b": 4.0,
    "log10_disc1_mass": 10.2, "log10_disc1_radius": 0.1, "ML_d1": 2.0, "k1": 0.8,
    "log10_disc2_mass": 10.6, "log10_disc2_radius": 0.6, "ML_d2": 1.5, "k2": 0.9,
    "log10_halo_fraction": 1.8, "concentration": 9.0, "x0": 0.3, "y0": -0.2, "orientation": 0.7,
    "inclination": 0.8,
}
#: A compact galaxy from the prior (an 18-free coverage mock's truth): bulge and inner disc of 16-17 pc, so the whole
#: galaxy sits within the emulator's central patch and the patch's quadrature decides its maps.
COMPACT_GALAXY = {
    "log10_bulge_mass": 10.8684, "log10_bulge_radius": -1.7872, "gamma": 1.3334, "ML_b": 5.5019,
    "log10_disc1_mass": 11.5788, "log10_disc1_radius": -1.7752, "ML_d1": 13.6157, "k1": 0.8714,
    "log10_disc2_mass": 9.2956, "log10_disc2_radius": 1.1341, "ML_d2": 17.4567, "k2": 0.0283,
    "log10_halo_fraction": 2.2027, "concentration": 5.012, "x0": 0.0135, "y0": -0.2533, "orientation": -1.8645,
    "inclination": 0.5842,
}
INDEX = {name: i for i, name in enumerate(PARAM_NAMES)}


def as_param_array(params, names=PARAM_NAMES):
    """Return ``params`` as a float64 array (N, 18) and whether the input was a single vector.

    Accepts a vector (18,), a batch (N, 18) or a dict {name: value} (all 18 names). Raises ValueError naming the
    problem (unknown or missing name, wrong shape) otherwise.
    """
    if isinstance(params, dict):
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown parameter name(s) {unknown}; expected names from {list(names)}")
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"missing parameter(s) {missing}")
        params = [params[n] for n in names]
    try:
        arr = np.asarray(params, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"parameters must be numbers: {exc}") from None
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(f"parameters must have shape ({len(names)},) or (N, {len(names)}), got {np.shape(params)}")
    return arr, single


def halo_scale_radius(params, redshift):
    """NFW scale radius r_s = r_200 / c in kpc for parameter rows (N, 18)."""
    p = np.atleast_2d(params)
    m_star = 10 ** p[:, 0] + 10 ** p[:, 4] + 10 ** p[:, 8]
    m200 = 10 ** p[:, 12] * m_star
    return r200_kpc(m200, rho_crit(redshift)) / p[:, 13]


@dataclass(frozen=True)
class ParameterSpace:
    """The prior box of docs/physics.md#parameters-and-prior with its physical cuts.

    Attributes: ``names`` (18 names), ``units``, ``bounds`` (18, 2) array of [low, high], ``redshift`` (for the
    cut r_s >= R_d2, which needs the critical density).
    """

    bounds: np.ndarray = field(default_factory=lambda: PARAM_BOUNDS.copy())
    redshift: float = 0.03
    names: tuple = PARAM_NAMES
    units: tuple = PARAM_UNITS

    def validate(self, params):
        """Return params as (N, 18) float64; raise ValueError naming the first bad parameter (NaN or out of bounds)."""
        arr, _ = as_param_array(params, self.names)
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        if np.all((arr >= lo) & (arr <= hi)):  # fast path (also False for NaN)
            return arr
        for j, name in enumerate(self.names):
            col = arr[:, j]
            bad = ~np.isfinite(col)
            if bad.any():
                raise ValueError(f"parameter {name} is not finite (row {int(np.argmax(bad))}: {col[bad][0]})")
            out = (col < lo[j]) | (col > hi[j])
            if out.any():
                i = int(np.argmax(out))
                raise ValueError(f"parameter {name} = {col[i]:.6g} (row {i}) is outside its bounds "
                                 f"[{lo[j]:.6g}, {hi[j]:.6g}]")
        raise AssertionError("unreachable")

    def cut_violations(self, params):
        """List of (row, description) for rows violating R_b <= R_d2, R_d1 <= R_d2 or r_s >= R_d2."""
        arr, _ = as_param_array(params, self.names)
        out = []
        rs = halo_scale_radius(arr, self.redshift)
        for i, row in enumerate(arr):
            rd2 = 10 ** row[9]
            if row[1] > row[9]:
                out.append((i, f"bulge radius 10^{row[1]:.3f} kpc > outer-disc radius 10^{row[9]:.3f} kpc"))
            elif row[5] > row[9]:
                out.append((i, f"inner-disc radius 10^{row[5]:.3f} kpc > outer-disc radius 10^{row[9]:.3f} kpc"))
            elif rs[i] < rd2:
                out.append((i, f"halo scale radius {rs[i]:.3g} kpc < outer-disc radius {rd2:.3g} kpc"))
        return out

    def complete(self, overrides, base):
        """One galaxy's parameters (18,) float64: ``base`` (dict of all 18 names or a vector (18,)) with the values
        of ``overrides`` ({name: value}) put in, checked against the bounds (ValueError naming the parameter), and
        the descriptions (list of str) of the physical cuts it violates."""
        arr, _ = as_param_array(base, self.names)
        if arr.shape[0] != 1:
            raise ValueError(f"base must be one galaxy, got {arr.shape[0]}")
        unknown = sorted(set(overrides) - set(self.names))
        if unknown:
            raise ValueError(f"unknown parameter name(s) {unknown}; expected names from {list(self.names)}")
        row = arr[0].copy()
        for name, value in overrides.items():
            row[self.names.index(name)] = float(value)
        row = self.validate(row)[0]
        return row, [why for _, why in self.cut_violations(row)]

    def satisfies_cuts(self, params):
        """Boolean array (N,): rows that satisfy the physical cuts (R_b <= R_d2, R_d1 <= R_d2, r_s >= R_d2)."""
        arr, _ = as_param_array(params, self.names)
        rs = halo_scale_radius(arr, self.redshift)
        return (arr[:, 1] <= arr[:, 9]) & (arr[:, 5] <= arr[:, 9]) & (rs >= 10 ** arr[:, 9])

    def from_unit(self, u):
        """Map unit-cube points (..., 18) to the box (uniform in each parametrisation)."""
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        return lo + np.asarray(u, dtype=np.float64) * (hi - lo)

    def to_unit(self, params):
        """Inverse of :meth:`from_unit`."""
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        return (np.asarray(params, dtype=np.float64) - lo) / (hi - lo)

    def sample_lhs(self, n, seed, return_stats=False):
        """Latin-hypercube sample of ``n`` points satisfying the cuts.

        Draws Latin hypercubes of growing size (scipy.stats.qmc, seeded) and keeps the accepted points in draw
        order until ``n`` are collected. Returns (n, 18); with ``return_stats`` also a dict with the numbers
        drawn and rejected.
        """
        from scipy.stats import qmc

        if int(n) < 1:
            raise ValueError(f"number of samples must be >= 1, got {n}")
        n = int(n)
        rng = np.random.default_rng(seed)
        kept, drawn = [], 0
        batch = max(2 * n, 16)
        while sum(len(k) for k in kept) < n:
            sampler = qmc.LatinHypercube(d=len(self.names), rng=rng)
            pts = self.from_unit(sampler.random(batch))
            drawn += batch
            kept.append(pts[self.satisfies_cuts(pts)])
        pts = np.concatenate(kept)[:n]
        if return_stats:
            return pts, {"drawn": drawn, "rejected": drawn - sum(len(k) for k in kept), "kept": n}
        return pts
