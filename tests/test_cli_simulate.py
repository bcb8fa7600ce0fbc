"""``galsr simulate``: FITS + PNG output, and one-line errors with exit code 2."""
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from galsr.cli import main
from galsr.maps_fits import read_maps
from galsr.simulator import EXAMPLE_GALAXY, LR_GRID, PARAM_NAMES, simulate


def test_simulate_writes_fits_and_png(tmp_path):
    out, png = tmp_path / "g.fits", tmp_path / "g.png"
    assert main(["simulate", "--param", "gamma=1.5", "--param", "k1=0.3", "--grid", "lr", "--out", str(out),
                 "--png", str(png)]) == 0
    maps, grid, z, params = read_maps(out)
    expected = dict(EXAMPLE_GALAXY, gamma=1.5, k1=0.3)
    np.testing.assert_array_equal(params, [expected[n] for n in PARAM_NAMES])
    assert grid.same_sky(LR_GRID) and z == pytest.approx(0.03)
    np.testing.assert_allclose(maps, simulate(params, LR_GRID), rtol=1e-12)
    with fits.open(out) as hdul:
        assert [h.name for h in hdul[1:]] == ["FLUX", "VEL", "SIGMA", "ML"]
        assert hdul["VEL"].header["BUNIT"] == "km/s"
        assert hdul[0].header["P02"] == 1.5 and "gamma" in hdul[0].header.comments["P02"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--param", "gamma=9"], "gamma = 9"),
    (["--param", "bulge=1"], "unknown parameter 'bulge'"),
    (["--param", "gamma"], "expected NAME=VALUE"),
    (["--param", "gamma=abc"], "not a number"),
])
def test_simulate_bad_input_exits_2_with_one_line(tmp_path, args, message):
    out = tmp_path / "g.fits"
    proc = subprocess.run([sys.executable, "-m", "galsr", "simulate", *args, "--grid", "lr", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and not out.exists()


def test_simulate_refuses_to_overwrite(tmp_path):
    out = tmp_path / "g.fits"
    out.write_bytes(b"keep me")
    assert main(["simulate", "--grid", "lr", "--out", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert main(["simulate", "--grid", "lr", "--out", str(out), "--overwrite"]) == 0
