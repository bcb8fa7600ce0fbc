"""The exact best fit's Laplace approximation and the walk along a curved posterior valley (galsr.laplace), on
banana-shaped least-squares problems with closed forms, and the importance sampler they start."""
import math

import numpy as np
import pytest

from galsr.laplace import VALLEY_FAR, bends, exact_laplace, exact_valley, local_gaussian, valley_mixture

LO, HI = np.array([-2.0, -2.0]), np.array([2.0, 2.0])
EPS, WIDTH = 0.1, 0.8  # the valley's thickness across y and its posterior width along x


def banana(t):
    """Normalised residuals of a valley along y = -1.5 + x^2: ln L = -1/2 [(y + 1.5 - x^2) / EPS]^2 - 1/2 (x / WIDTH)^2."""
    return np.array([(t[1] + 1.5 - t[0] ** 2) / EPS, t[0] / WIDTH])


def plane(t):
    """A Gaussian posterior (no valley): correlated, widths about 0.3 and 0.1 around (0.2, 0.6)."""
    return np.array([(t[0] - 0.2) / 0.3, (t[1] - 0.5 - 0.5 * t[0]) / 0.1])


def test_laplace_covariance_is_the_closed_form_along_the_valley():
    """Central differences: J^T J of the banana at (x, x^2 - 1.5) inverts to [[w^2, 2 x w^2], [2 x w^2, 4 x^2 w^2 +
    e^2]] exactly (forward differences tilt it by the curvature)."""
    x = 0.7
    logl, cov, n = local_gaussian(banana, np.array([x, x * x - 1.5]), np.array([0.5, 0.5]), LO, HI)
    w2 = WIDTH**2
    np.testing.assert_allclose(cov, [[w2, 2 * x * w2], [2 * x * w2, 4 * x * x * w2 + EPS**2]], rtol=1e-6)
    assert logl == pytest.approx(-0.5 * (x / WIDTH) ** 2) and n == 5


def test_the_walk_follows_a_curved_valley_to_the_box():
    theta, cov, _ = exact_laplace(banana, np.array([0.3, -1.0]), np.array([0.3, 0.3]), LO, HI)
    np.testing.assert_allclose(theta, [0.0, -1.5], atol=1e-6)
    valley, = exact_valley(banana, theta, cov, LO, HI)
    x, y = valley.theta.T
    assert valley.parameter == 0  # x: the widest direction in units of the box
    assert len(x) >= 7 and np.all(np.diff(x) > 0)
    floor = np.minimum(x**2 - 1.5, HI[1])  # the valley's floor, or the box where the floor leaves it
    np.testing.assert_allclose(y, floor, atol=2e-3)
    np.testing.assert_allclose(valley.logl, -0.5 * (((y + 1.5 - x**2) / EPS) ** 2 + (x / WIDTH) ** 2), atol=1e-4)
    # both ways to where y meets the box (x = +-sqrt(3.5)), each point's Laplace component overlapping the next
    assert x[0] < -1.6 and x[-1] > 1.6
    for k in range(len(x) - 1):
        step = valley.theta[k + 1] - valley.theta[k]
        nearer = valley.cov[k] if abs(x[k]) < abs(x[k + 1]) else valley.cov[k + 1]
        assert math.sqrt(step @ np.linalg.solve(nearer, step)) <= 3.0 + 1e-9


def test_the_walk_stops_soon_around_a_gaussian():
    theta, cov, _ = exact_laplace(plane, np.array([0.0, 0.0]), np.array([0.3, 0.3]), LO, HI)
    valley, = exact_valley(plane, theta, cov, LO, HI)
    assert 5 <= len(valley.logl) <= 7  # steps of 1.5 sigma each way, closing in on ln mass 8 below the top
    assert np.min(valley.logl) > -8.0 - 1e-9
    np.testing.assert_allclose(valley.theta[:, 1], 0.5 + 0.5 * valley.theta[:, 0], atol=1e-6)  # along the ridge


def test_the_probe_tells_a_bending_valley_from_a_gaussian():
    """ln L at 2 sigma along the Laplace Gaussian's line: a fall of 2 for a Gaussian (no walk needed), far more for
    the banana, whose floor curves away from the line."""
    theta, cov, _ = exact_laplace(plane, np.array([0.0, 0.0]), np.array([0.3, 0.3]), LO, HI)
    for k in (0, 1):
        bent, falls, _ = bends(plane, theta, cov, LO, HI, k)
        assert not bent and np.allclose(falls, 2.0, atol=1e-6)
    theta, cov, _ = exact_laplace(banana, np.array([0.3, -1.0]), np.array([0.3, 0.3]), LO, HI)
    bent, falls, _ = bends(banana, theta, cov, LO, HI, 0)
    assert bent and falls[0] > 3.0  # (2 x 0.8)^2 / 0.1 off the floor: hundreds


def test_a_gaussian_wider_than_the_box_is_walked_across_it():
    """The banana with a posterior width along x of 10, five times the box's half-width (the data barely constrain
    x): the Laplace Gaussian's line leaves the box within a sigma both ways, so the probe has no fall to measure, yet
    the posterior fills the box along the curved floor. The probe must call for a walk, and the walk must follow the
    floor across the box in steps of at most an eighth of its width (the local sigma, 10, says nothing of spacing),
    without refits wasted on strides of 1.5 sigma halved down to the box (423 evaluations instead of 241)."""
    def wide(t):
        return np.array([(t[1] + 1.5 - t[0] ** 2) / EPS, t[0] / 10.0])

    theta, cov, _ = exact_laplace(wide, np.array([0.3, -1.0]), np.array([0.3, 0.3]), LO, HI)
    assert math.sqrt(cov[0, 0]) == pytest.approx(10.0, rel=1e-3)
    bent, falls, _ = bends(wide, theta, cov, LO, HI, 0)
    assert bent and falls == []
    valley, = exact_valley(wide, theta, cov, LO, HI, parameters=[0])
    x, y = valley.theta.T
    assert x[0] < -1.6 and x[-1] > 1.6
    assert np.all(np.diff(x) > 0) and np.all(np.diff(x) <= 0.125 * (HI[0] - LO[0]) + 1e-9)
    np.testing.assert_allclose(y, np.minimum(x**2 - 1.5, HI[1]), atol=2e-3)
    assert valley.evaluations < 300


def test_a_walk_from_a_point_the_refits_leave_stops():
    """Started from a point that is not the best fit (y 5 off where its width is 0.01), every refit lands hundreds of
    sigmas away however short the step: each side gives up after VALLEY_FAR refits instead of halving its step to
    nothing (18-free mock 20: 52 refits a side, down to steps of 1e-16)."""
    held = []

    def off(t):
        held.append(t[0])
        return np.array([t[0], (t[1] - 5.0) / 0.01])

    theta = np.array([0.0, 0.0])
    _, cov, _ = local_gaussian(off, theta, np.array([0.5, 0.5]), LO, np.array([2.0, 10.0]))
    held.clear()
    valley, = exact_valley(off, theta, cov, LO, np.array([2.0, 10.0]), parameters=[0])
    assert len(valley.logl) == 1  # the start alone
    refits = set(held) - {0.0, 0.1, -0.1}  # the held x of each refit (the start's central differences: x 0 +- 0.1)
    assert len(refits) == 2 * VALLEY_FAR, sorted(refits)


def test_importance_sampling_from_the_valley_finds_the_bananas_mass(xy_prior):
    """Exact importance sampling (galsr.finish.adaptive_importance) of the banana from the valley's mixture against
    the grid's closed-form moments and evidence, and against the same sampler started from the Laplace Gaussian
    alone, which sees only the valley's bottom."""
    from galsr.finish import adaptive_importance

    prior, _ = xy_prior
    lo, hi = prior.lo, prior.hi

    def evaluate(x):
        return np.array([-0.5 * banana(t) @ banana(t) for t in x])

    gx, gy = np.meshgrid(np.linspace(-2, 2, 801), np.linspace(-2, 2, 1601), indexing="ij")
    like = np.exp(-0.5 * (((gy + 1.5 - gx**2) / EPS) ** 2 + (gx / WIDTH) ** 2))
    cell = (gx[1, 0] - gx[0, 0]) * (gy[0, 1] - gy[0, 0])
    logz_grid = math.log(like.sum() * cell) + prior.log_density(np.zeros(2))
    mean_y = float((like * gy).sum() / like.sum())

    theta, cov, _ = exact_laplace(banana, np.array([0.3, -1.0]), np.array([0.3, 0.3]), lo, hi)
    valley, = exact_valley(banana, theta, cov, lo, hi)
    for seed in (3, 4, 5):
        verdict = {}
        for name, start in (("valley", valley_mixture([valley], lo, hi, 1.2)), ("laplace", (theta, cov))):
            x, _, logw, logz, logzerr, ess, _, _ = adaptive_importance(
                evaluate, prior, theta[None], np.zeros(1), seed=seed, n_per_round=400, max_rounds=3,
                ess_target=1e9, widen=1.2, start=start)
            w = np.exp(logw - logz)
            right = abs(logz - logz_grid) < 3 * logzerr + 0.05 and abs(w @ x[:, 1] / w.sum() - mean_y) < 0.05
            verdict[name] = (ess >= 200, right)
        assert verdict["valley"] == (True, True), seed
        # from the Laplace Gaussian alone: too few effective samples, or (worse) enough of them and a wrong answer
        assert verdict["laplace"] != (True, True), seed


def test_mixture_weights_follow_the_importance_weight():
    """Population Monte Carlo's update (galsr.finish._reweighted_mixture): a component that accounts for all of the
    weight gets almost all of the mixture, the other keeps its floor of 1 % of an equal share."""
    from galsr.finish import _reweighted_mixture
    from galsr.proposals import StudentT, StudentTMixture

    floor = np.full(2, 1e-9)
    mix = StudentTMixture([StudentT([-1.0, 0.0], np.eye(2) * 0.01, 5.0, floor),
                           StudentT([1.0, 0.0], np.eye(2) * 0.01, 5.0, floor)])
    x = mix.rvs(400, np.random.default_rng(0))
    logw = np.where(x[:, 0] > 0, 0.0, -np.inf)  # only the right-hand component's draws carry weight
    share = np.exp(_reweighted_mixture(mix, x, logw).logweights)
    assert share.sum() == pytest.approx(1.0)
    assert share[0] == pytest.approx(0.005 / 1.005, rel=1e-4) and share[1] > 0.99
    draws = StudentTMixture(mix.components, np.log(share)).rvs(1000, np.random.default_rng(1))
    assert np.mean(draws[:, 0] > 0) > 0.98
