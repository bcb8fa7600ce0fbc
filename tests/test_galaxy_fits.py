"""Galaxy input FITS: round trip, mock noise model, and every refusal with a clear message."""
import numpy as np
import pytest
from astropy.io import fits

from galsr.cli import main
from galsr.galaxy import read_galaxy, write_galaxy
from galsr.mock import example_parameters, make_mock, mock_errors
from galsr.simulator import Grid, simulate

GRID = Grid.from_arcsec(12, 3.0, 0.03, 1.3, 2.5, oversample=2, centre_zoom=4)


@pytest.fixture(scope="module")
def mock():
    return make_mock(example_parameters(), seed=3, snr=20.0, grid=GRID)


@pytest.fixture
def mock_file(tmp_path, mock):
    return write_galaxy(tmp_path / "g.fits", mock)


def test_round_trip(mock, mock_file):
    g = read_galaxy(mock_file)
    np.testing.assert_array_equal(g.maps, mock.maps)
    np.testing.assert_array_equal(g.errors, mock.errors)
    np.testing.assert_array_equal(g.mask, mock.mask)
    np.testing.assert_array_equal(g.truth, mock.truth)
    assert g.grid == GRID and g.redshift == pytest.approx(0.03)
    with fits.open(mock_file) as hdul:
        assert hdul["FLUX"].header["BUNIT"] == "Lsun/kpc2" and hdul["VEL_ERR"].header["HDUCLAS2"] == "ERROR"
        assert hdul[0].header["PSFKIN"] == pytest.approx(2.5)


def test_mock_noise_has_the_stated_errors():
    truth = example_parameters()
    clean = simulate(truth, GRID)
    errors, mask = mock_errors(clean, 20.0)
    pulls = [(make_mock(truth, seed=s, snr=20.0, grid=GRID).maps - clean) / errors for s in range(20)]
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.05 and pulls.std() == pytest.approx(1.0, abs=0.05)
    assert np.all(errors[1] >= 2.0) and np.all(errors[0] > 0)
    assert not mask.all()


def test_ivar_extension_accepted(tmp_path, mock_file):
    with fits.open(mock_file) as hdul:
        err = hdul["VEL_ERR"].data
        hdul["VEL_ERR"].data = 1.0 / err**2
        hdul["VEL_ERR"].name = "VEL_IVAR"
        hdul.writeto(tmp_path / "ivar.fits")
    g = read_galaxy(tmp_path / "ivar.fits")
    np.testing.assert_allclose(g.errors[1], err)


def _edit(src, dst, edit):
    with fits.open(src) as hdul:
        edit(hdul)
        hdul.writeto(dst, overwrite=True)
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.pop(h.index_of("VEL")), "no VEL extension"),
    (lambda h: h.pop(h.index_of("SIGMA_ERR")), "SIGMA has no error extension"),
    (lambda h: h["SIGMA"].__setattr__("data", np.zeros((5, 5))), "SIGMA has shape"),
    (lambda h: h["FLUX"].data.__setitem__(slice(None), np.nan), "FLUX is all NaN"),
    (lambda h: h["VEL_ERR"].data.__setitem__((0, 0), 0.0), "zero or negative errors"),
    (lambda h: h[0].header.remove("REDSHIFT"), "no REDSHIFT keyword"),
    (lambda h: h[0].header.remove("PSFKIN"), "no PSFKIN keyword"),
    (lambda h: h["VEL"].header.__setitem__("BUNIT", "m/s"), "BUNIT = 'm/s'"),
])
def test_refusals_name_the_problem(tmp_path, mock_file, edit, message):
    bad = _edit(mock_file, tmp_path / "bad.fits", edit)
    with pytest.raises(ValueError, match=message):
        read_galaxy(bad)


def test_not_fits_and_missing_file(tmp_path):
    txt = tmp_path / "x.fits"
    txt.write_text("SIMPLE? no")
    with pytest.raises(ValueError, match="not a readable FITS"):
        read_galaxy(txt)
    with pytest.raises(ValueError, match="no such file"):
        read_galaxy(tmp_path / "missing.fits")


def test_cli_mock_and_fit_refusal_exit_2(tmp_path, capsys):
    out = tmp_path / "m.fits"
    assert main(["mock", "--seed", "4", "--snr", "10", "--out", str(out)]) == 0
    g = read_galaxy(out)
    assert g.truth is not None and g.npix == 80
    bad = _edit(out, tmp_path / "bad.fits", lambda h: h[0].header.remove("PIXSCALE"))
    assert main(["fit", str(bad), "--out", str(tmp_path / "fit")]) == 2
    assert "PIXSCALE" in capsys.readouterr().err
    assert not (tmp_path / "fit").exists()
