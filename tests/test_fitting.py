"""The fit: likelihood, prior, a real dynesty run, resume after a kill, forward models, refusals."""
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from galsr.forward_models import SimulatorForward, make_forward
from galsr.galaxy import Galaxy, write_galaxy
from galsr.mock import example_parameters, make_mock, mock_errors
from galsr.likelihood import FitData, log_likelihood, log_likelihood_of_parameters
from galsr.prior import Prior
from galsr.simulator import EXAMPLE_GALAXY, PARAM_BOUNDS, PARAM_NAMES, Grid, ParameterSpace, simulate

GRID = Grid.from_arcsec(12, 3.0, 0.03, 1.3, 2.5, oversample=2, centre_zoom=4)
FREE = ("log10_disc2_mass", "orientation", "inclination")


def _fixed(free=FREE):
    return {n: v for n, v in EXAMPLE_GALAXY.items() if n not in free}


def test_likelihood_peaks_at_the_truth_of_a_noiseless_mock():
    truth = example_parameters()
    clean = simulate(truth, GRID)
    errors, mask = mock_errors(clean, 20.0)
    galaxy = Galaxy(clean, errors, mask, GRID, 0.03, truth=truth)
    data, forward = FitData(galaxy), SimulatorForward(GRID, 0.03)
    prior = Prior(fixed={})
    best = log_likelihood_of_parameters(truth, prior, data, forward)
    assert best == pytest.approx(log_likelihood(data, clean))  # the same statistic on the same maps
    s = np.concatenate([np.sqrt(v) for v in data.variances])
    assert best == pytest.approx(-0.5 * np.sum(np.log(2 * np.pi * s**2)))  # chi^2 = 0
    for j, name in enumerate(PARAM_NAMES):
        step = 0.01 * (PARAM_BOUNDS[j, 1] - PARAM_BOUNDS[j, 0])
        for sign in (-1, 1):
            p = truth.copy()
            p[j] = np.clip(p[j] + sign * step, *PARAM_BOUNDS[j])
            if ParameterSpace().satisfies_cuts(p)[0] and p[j] != truth[j]:
                assert log_likelihood_of_parameters(p, prior, data, forward) < best, name


def test_physical_cuts_are_minus_infinity():
    galaxy = make_mock(example_parameters(), seed=0, grid=GRID)
    p = example_parameters()
    p[PARAM_NAMES.index("log10_bulge_radius")] = 1.4  # bulge larger than the outer disc
    assert log_likelihood_of_parameters(p, Prior(), FitData(galaxy), SimulatorForward(GRID, 0.03)) == -np.inf


def test_prior_transform_isotropic_inclination_and_fixing():
    prior = Prior(fixed={"x0": 0.5})
    assert prior.ndim == 17 and "x0" not in prior.free_names
    rng = np.random.default_rng(0)
    incl = np.array([prior.transform(rng.random(17))[prior.incl] for _ in range(20000)])
    lo, hi = PARAM_BOUNDS[-1]
    assert incl.min() >= lo and incl.max() <= hi
    # p(i) ∝ sin i: the mean of cos i is the midpoint of [cos hi, cos lo]
    assert np.cos(incl).mean() == pytest.approx(0.5 * (math.cos(lo) + math.cos(hi)), abs=5e-3)
    assert prior.full(np.zeros(17))[PARAM_NAMES.index("x0")] == 0.5
    with pytest.raises(ValueError, match="outside its bounds"):
        Prior(fixed={"gamma": 3.0})
    with pytest.raises(ValueError, match="unknown parameter"):
        Prior(fixed={"bulge": 1.0})


def test_prior_sample_is_the_fit_prior_with_the_cuts():
    """Simulation-based calibration needs truths drawn from the prior the fit uses: isotropic inclination (not the
    training sets' uniform one), the physical cuts, fixed values kept, the same draws for the same seed."""
    prior = Prior()
    x = prior.sample(4000, seed=3)
    assert x.shape == (4000, 18)
    assert np.all(prior.space.satisfies_cuts(x))
    assert np.all((x >= prior.lo) & (x <= prior.hi))
    lo, hi = PARAM_BOUNDS[-1]
    cos_i = np.cos(x[:, prior.incl])
    # uniform in cos i: each fifth of [cos hi, cos lo] holds a fifth of the draws (the cuts do not involve i)
    counts = np.histogram(cos_i, bins=5, range=(math.cos(hi), math.cos(lo)))[0]
    assert np.all(np.abs(counts - 800) < 4 * math.sqrt(800 * 0.8))
    # ... whereas the training sets' Latin hypercube is uniform in i itself
    lhs = ParameterSpace().sample_lhs(4000, seed=3)[:, -1]
    assert np.mean(np.cos(lhs)) > np.mean(cos_i) + 0.02
    np.testing.assert_array_equal(prior.sample(7, seed=3), prior.sample(7, seed=3))
    fixed = Prior(fixed={"x0": 0.5, "inclination": 0.7})
    assert fixed.sample(5, seed=1).shape == (5, 16)


@pytest.fixture(scope="module")
def mock_file(tmp_path_factory):
    return write_galaxy(tmp_path_factory.mktemp("fit") / "mock.fits",
                        make_mock(example_parameters(), seed=7, snr=20.0, grid=GRID))


def test_short_dynesty_run_recovers_the_parameters(tmp_path, mock_file):
    from galsr.fit_outputs import prepare_output_dir, write_fit_outputs
    from galsr.fitting import fit

    out = tmp_path / "fit"
    res = fit(mock_file, forward="simulator", nlive=40, workers=2, checkpoint_dir=out, fixed=_fixed(), seed=1)
    write_fit_outputs(res, out)
    summary = json.load(open(out / "summary.json"))
    assert summary == json.loads(json.dumps(res.summary))
    for name in FREE:
        e = summary["parameters"][name]
        width = 0.5 * (e["p84"] - e["p16"])
        assert abs(e["median"] - e["truth"]) < 4 * width + 1e-9, (name, e)
        assert not e["fixed"]
    assert summary["parameters"]["gamma"]["fixed"]
    for f in ("samples.h5", "corner.png", "residuals.png", "bestfit.fits", "run.json", "summary.txt"):
        assert (out / f).exists(), f
    run = json.load(open(out / "run.json"))
    assert run["settings"]["workers"] == 2 and run["n_likelihood_calls"] > 100
    assert np.isfinite(res.summary["logz"]) and res.summary["logzerr"] > 0
    # nothing already in --out is lost: a second run into it is refused
    with pytest.raises(ValueError, match="not empty"):
        prepare_output_dir(out)


def test_resume_after_a_kill(tmp_path, mock_file):
    out = tmp_path / "fit"
    script = ("from galsr.fitting import fit; from galsr.simulator import EXAMPLE_GALAXY; "
              f"fixed = {{n: v for n, v in EXAMPLE_GALAXY.items() if n not in {FREE!r}}}; "
              f"fit({str(mock_file)!r}, forward='simulator', nlive=40, workers=1, checkpoint_dir={str(out)!r}, "
              "fixed=fixed, checkpoint_every=0.2, seed=2)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    ckpt = out / "checkpoint.save"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    from galsr.fitting import fit

    res = fit(mock_file, forward="simulator", nlive=40, workers=2, checkpoint_dir=out, fixed=_fixed(), resume=True,
              seed=2)  # a resume repeats the settings of its run
    assert res.run["resumed"]
    e = res.summary["parameters"]["inclination"]
    assert abs(e["median"] - e["truth"]) < 4 * 0.5 * (e["p84"] - e["p16"]) + 1e-9


def test_emulator_refuses_data_on_another_grid(mock_file):
    from galsr.galaxy import read_galaxy

    with pytest.raises(ValueError, match=r"differs from the emulator's grid .*--forward simulator"):
        make_forward(read_galaxy(mock_file), "emulator")


def test_emulator_and_simulator_agree_within_the_error_maps():
    from galsr import Emulator
    from galsr.forward_models import EmulatorForward

    emu = Emulator.default()
    fwd = EmulatorForward(emu)
    params = ParameterSpace().sample_lhs(16, seed=123)
    sim = simulate(params, emu.hr_grid)
    got = np.array([fwd(p) for p in params])
    diff = np.abs(got - sim)
    diff[:, 0] = np.abs(np.log10(got[:, 0]) - np.log10(sim[:, 0]))  # brightness errors are in dex
    pulls = diff / fwd.error_maps
    assert np.median(pulls) < 1.0
    assert np.percentile(pulls, 95) < 4.0
