"""The sampling coordinates of galsr.coordinates: an exact, volume-preserving shear, and what it buys the finish's
moves on an unresolved bulge's valley."""
import math

import numpy as np

from galsr.coordinates import BulgeScale, SamplingCoordinates
from galsr.prior import Prior
from galsr.tempering import temper


def test_bulge_scale_is_a_volume_preserving_shear_inside_its_box():
    prior = Prior()
    coords = BulgeScale(prior.free_names)
    x = prior.sample(200, seed=3)
    z = coords.to_sampling(x)
    np.testing.assert_allclose(coords.from_sampling(z), x, rtol=0, atol=1e-12)
    # s = log10 a + log10(3 - gamma) in the radius' place; nothing else changes
    r, g = prior.free_names.index("log10_bulge_radius"), prior.free_names.index("gamma")
    np.testing.assert_allclose(z[:, r], x[:, r] + np.log10(3.0 - x[:, g]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.delete(z, r, axis=1), np.delete(x, r, axis=1))
    # unit Jacobian, by central differences at a few points
    h = 1e-6
    for point in x[:5]:
        jac = np.column_stack([(coords.to_sampling(point + h * e) - coords.to_sampling(point - h * e)) / (2 * h)
                               for e in np.eye(prior.ndim)])
        assert abs(np.linalg.det(jac) - 1.0) < 1e-6
    # the sampling box holds the whole prior box (its corners in radius and gamma are the extremes of s)
    zlo, zhi = coords.box(prior.lo, prior.hi)
    corners = np.array([[a, b] for a in (prior.lo[r], prior.hi[r]) for b in (prior.lo[g], prior.hi[g])])
    full = np.tile(prior.lo, (4, 1))
    full[:, [r, g]] = corners
    assert np.all(coords.to_sampling(full) >= zlo - 1e-12) and np.all(coords.to_sampling(full) <= zhi + 1e-12)
    assert np.all(z >= zlo) and np.all(z <= zhi)
    # the identity when the bulge's radius or slope is fixed
    fixed = BulgeScale([n for n in prior.free_names if n != "gamma"])
    assert not fixed.active
    np.testing.assert_array_equal(fixed.to_sampling(x[:, :-1]), x[:, :-1])


def test_moves_in_bulge_scale_walk_an_unresolved_bulges_valley():
    """A posterior like an unresolved bulge's (18-free mock 20): (3 - gamma) a known to 0.002 dex, gamma itself to
    0.3 only, so the valley in (log10 a, gamma) is curved and 150 times narrower than long. Tempered from a Gaussian
    clump at gamma 1.7 that knows nothing of the valley, the moves in (log10 a, gamma) leave the particles near the
    clump and too narrow (gamma std about 0.13, mean 1.57 on four seeds); in (s, gamma), where the valley is straight,
    they reach the posterior's mean and width along it."""
    names = ["log10_bulge_mass", "log10_bulge_radius", "gamma"]
    lo, hi = np.array([8.5, -2.0, 0.0]), np.array([12.0, 1.5, 2.4])
    s0, width_s, gamma0, width_gamma = -1.41, 0.002, 1.3, 0.3

    def s_of(x):
        return x[:, 1] + np.log10(3.0 - x[:, 2])

    def inside(x):
        return np.all((x >= lo) & (x <= hi), axis=1)

    def target(x):
        logl = (-0.5 * ((s_of(x) - s0) / width_s) ** 2 - 0.5 * ((x[:, 2] - gamma0) / width_gamma) ** 2
                - 0.5 * ((x[:, 0] - 10.0) / 0.1) ** 2)
        logl = np.where(inside(x), logl, -np.inf)
        return logl, logl

    mu = np.array([10.0, s0 - math.log10(3.0 - 1.7), 1.7])
    sd = np.array([0.1, 0.02, 0.05])

    def reference(x):
        return np.where(inside(x), np.sum(-0.5 * ((x - mu) / sd) ** 2, axis=1), -np.inf)

    start = mu + sd * np.random.default_rng(2).standard_normal((400, 3))
    runs = {}
    for label, coords in (("sheared", SamplingCoordinates(names)), ("plain", SamplingCoordinates(names[:1]))):
        out = temper(coords.pulled_back(reference), coords.pulled_back(target), coords.to_sampling(start), 0.0,
                     *coords.box(lo, hi), seed=2)
        assert out.beta == 1.0
        runs[label] = coords.from_sampling(out.samples)
    sheared, plain = runs["sheared"], runs["plain"]
    assert abs(sheared[:, 2].mean() - gamma0) < 0.05 and abs(sheared[:, 2].std() / width_gamma - 1.0) < 0.12
    assert abs(s_of(sheared).std() / width_s - 1.0) < 0.12
    assert plain[:, 2].std() < 0.7 * width_gamma and plain[:, 2].mean() > gamma0 + 0.15


def test_light_scale_round_trips_with_the_jacobian_of_its_map():
    prior = Prior()
    coords = SamplingCoordinates(prior.free_names)
    x = prior.sample(200, seed=4)
    z = coords.to_sampling(x)
    np.testing.assert_allclose(coords.from_sampling(z), x, rtol=1e-12, atol=1e-12)
    # l = log10 M - log10(M/L) in each M/L's place
    for mass, ml in (("log10_bulge_mass", "ML_b"), ("log10_disc1_mass", "ML_d1"), ("log10_disc2_mass", "ML_d2")):
        m, k = prior.free_names.index(mass), prior.free_names.index(ml)
        np.testing.assert_allclose(z[:, k], x[:, m] - np.log10(x[:, k]), rtol=0, atol=1e-12)
    # ln |dx / dz| against the determinant of central differences of the inverse map
    h = 1e-6
    for point in z[:5]:
        jac = np.column_stack([(coords.from_sampling(point + h * e) - coords.from_sampling(point - h * e)) / (2 * h)
                               for e in np.eye(prior.ndim)])
        assert abs(math.log(abs(np.linalg.det(jac))) - coords.log_jacobian(point)) < 1e-6
    zlo, zhi = coords.box(prior.lo, prior.hi)
    assert np.all(z >= zlo) and np.all(z <= zhi)
    # a density pulled back gains the Jacobian; a tuple's other elements (ln L) do not
    pulled = coords.pulled_back(lambda t: (np.zeros(len(t)), np.ones(len(t))))(z[:3])
    np.testing.assert_allclose(pulled[0], coords.log_jacobian(z[:3]))
    np.testing.assert_array_equal(pulled[1], np.ones(3))
    # the identity when no component has both its mass and its M/L free
    fixed = SamplingCoordinates([n for n in prior.free_names if not n.startswith("ML_") and n != "gamma"])
    assert not fixed.active


def test_moves_in_light_scale_walk_a_faint_discs_valley():
    """A faint disc (18-free mock 18): its light M / (M/L) known to 0.005 dex, its mass M only to 0.25 dex (a weak
    Gaussian standing in for the prior's box), so the valley runs along M/L proportional to M, an exponential curve in
    (log10 M, M/L). Tempered from a clump at its low-mass end, the moves in (log10 M, M/L) stay near the clump; in
    (log10 M, l) they reach the posterior's mean and width in log10 M, known here by quadrature (four seeds: mean
    within 0.07 of its width, width 0.94-1.08 of it; in the plain coordinates mean 1.6 widths low, width 0.3)."""
    names = ["log10_disc1_mass", "ML_d1", "k1"]
    lo, hi = np.array([8.5, 0.1, 0.01]), np.array([12.0, 20.0, 1.0])
    light, width_l, mass0, width_m = 8.6, 0.005, 9.0, 0.25

    def inside(x):
        return np.all((x >= lo) & (x <= hi), axis=1)

    def target(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            l_ = x[:, 0] - np.log10(x[:, 1])
        logl = (-0.5 * ((l_ - light) / width_l) ** 2 - 0.5 * ((x[:, 0] - mass0) / width_m) ** 2
                - 0.5 * ((x[:, 2] - 0.5) / 0.05) ** 2)
        logl = np.where(inside(x), logl, -np.inf)
        return logl, logl

    mu, sd = np.array([8.7, 10 ** (8.7 - light), 0.5]), np.array([0.03, 0.05, 0.05])

    def reference(x):
        return np.where(inside(x), np.sum(-0.5 * ((x - mu) / sd) ** 2, axis=1), -np.inf)

    # the posterior of log10 M: the weak Gaussian x d(M/L)/dl (uniform prior in M/L) inside the box
    m = np.linspace(lo[0], hi[0], 20001)
    ml = 10 ** (m - light)
    p = np.exp(-0.5 * ((m - mass0) / width_m) ** 2) * ml * ((ml >= lo[1]) & (ml <= hi[1]))
    p /= p.sum()
    mean = float(np.sum(p * m))
    std = float(math.sqrt(np.sum(p * (m - mean) ** 2)))
    start = mu + sd * np.random.default_rng(2).standard_normal((400, 3))
    runs = {}
    for label, keep in (("light", names), ("plain", names[:1] + names[2:])):
        coords = SamplingCoordinates(keep)  # without the M/L among them: the identity
        out = temper(coords.pulled_back(reference), coords.pulled_back(target), coords.to_sampling(start), 0.0,
                     *coords.box(lo, hi), seed=2)
        assert out.beta == 1.0
        runs[label] = coords.from_sampling(out.samples)
    assert abs(runs["light"][:, 0].mean() - mean) < 0.1 * std and abs(runs["light"][:, 0].std() / std - 1) < 0.12
    assert runs["plain"][:, 0].mean() < mean - 0.5 * std
