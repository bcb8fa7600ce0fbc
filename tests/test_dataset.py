"""Dataset generation: layout, determinism across workers, kill-and-resume equality, refusals, physics."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from galsr.simulator import Grid, ParameterSpace, generate_dataset, load_dataset
from galsr.simulator.dataset_file import LAYOUT_VERSION

LR = Grid(8, 3.0, 1.0, 1.5)
HR = Grid(32, 0.75, 1.0, 1.5, oversample=2, centre_zoom=2)


def _make(path, n=40, seed=5, **kw):
    kw = dict(dict(workers=1, block_size=8, progress=False), **kw)
    return generate_dataset(str(path), n, seed, LR, HR, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("ref") / "ref.h5")


def _arrays(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("params", "lr", "hr", "split")}


def test_layout_and_attributes(reference):
    with load_dataset(reference) as d:
        assert len(d) == 40
        assert d.params.shape == (40, 18) and d.lr.shape == (40, 4, 8, 8) and d.hr.shape == (40, 4, 32, 32)
        assert d.lr.dtype == np.float32 and d.hr.dtype == np.float32
        assert d.lr_grid == LR and d.hr_grid == HR and d.redshift == pytest.approx(0.03)
        a = d.attrs
        assert a["complete"] and a["layout_version"] == LAYOUT_VERSION and a["seed"] == 5
        assert a["sampling"] == "latin-hypercube" and a["n_drawn"] - a["n_rejected"] >= 40
        assert d.hr.compression == "gzip" and d.hr.chunks[1:] == (4, 32, 32)
        assert list(d.params.attrs["names"])[2] == "gamma"
        # the statistics are those of the data
        hr = d.hr[()].astype(np.float64)
        np.testing.assert_allclose(d.stats["hr"]["max"], hr.max(axis=(0, 2, 3)))
        np.testing.assert_allclose(d.stats["hr"]["mean"], hr.mean(axis=(0, 2, 3)), rtol=1e-9)
        assert d.stats["lr"]["log10_B_min"] == pytest.approx(np.log10(d.lr[:, 0]).min())
        # a reproducible split, 1/3 validation
        assert len(d.val_indices()) == 13 and len(d.train_indices()) == 27


def test_rows_satisfy_the_cuts_and_describe_the_same_galaxy(reference):
    with load_dataset(reference) as d:
        params, lr, hr = d.params[()], d.lr[()], d.hr[()]
    assert ParameterSpace().satisfies_cuts(params).all()
    # HR brightness averaged over 4 x 4 blocks ~ LR point values (the pixels are 3 kpc, so only roughly) ...
    blocks = np.log10(hr[:, 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4)))
    lr_b = np.log10(lr[:, 0])
    assert np.median(np.abs(blocks - lr_b)) < 0.05
    # ... and each HR row matches its own LR row better than any other galaxy's
    dist = np.abs(blocks[:, None] - lr_b[None, :]).mean(axis=(2, 3))
    assert np.all(np.argmin(dist, axis=1) == np.arange(len(params)))


def test_same_bytes_whatever_the_workers(tmp_path, reference):
    other = _make(tmp_path / "threads2.h5", workers=2, block_size=8)
    ref = _arrays(reference)
    for key, value in _arrays(other).items():
        assert value.tobytes() == ref[key].tobytes(), key


def test_kill_and_resume_gives_the_same_file(tmp_path, reference, monkeypatch):
    out = tmp_path / "killed.h5"
    script = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r});"
              "from test_dataset import _make; "
              f"_make({str(out)!r}, block_size=1)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    work = str(out) + ".partial"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some blocks, but not all, are on disk
        if os.path.isdir(work) and len([f for f in os.listdir(work) if f.startswith("block_")]) >= 2:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and os.path.isdir(work)
    with pytest.raises(ValueError, match="partial run"):
        _make(out, block_size=1)
    # same creation stamp as the reference, so that the whole files can be compared byte for byte
    meta = json.load(open(os.path.join(work, "meta.json")))
    with h5py.File(reference, "r") as f:
        meta["created_utc"] = f.attrs["created_utc"]
    json.dump(meta, open(os.path.join(work, "meta.json"), "w"))
    _make(out, block_size=1, resume=True)
    assert not os.path.exists(work)
    ref = _arrays(reference)
    for key, value in _arrays(out).items():
        assert value.tobytes() == ref[key].tobytes(), key
    # an uninterrupted run started at the same (recorded) time gives the very same file
    import galsr.simulator.dataset

    monkeypatch.setattr(galsr.simulator.dataset, "_now_utc", lambda: meta["created_utc"])
    uninterrupted = _make(tmp_path / "again.h5", block_size=1)
    assert open(out, "rb").read() == open(uninterrupted, "rb").read()


def test_existing_output_is_never_replaced_silently(tmp_path):
    out = tmp_path / "x.h5"
    out.write_bytes(b"precious")
    with pytest.raises(ValueError, match="exists"):
        _make(out, n=4)
    assert out.read_bytes() == b"precious"
    _make(out, n=4, overwrite=True)
    with load_dataset(out) as d:
        assert len(d) == 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be"),
    (dict(lr_grid=Grid(8, 3.0), hr_grid=Grid(32, 0.7)), "HR field"),
    (dict(lr_grid=Grid(8, 3.0), hr_grid=Grid(12, 2.0)), "multiple"),
    (dict(val_fraction=1.0), "val_fraction"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    args = dict(n=4, seed=1, lr_grid=LR, hr_grid=HR)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_dataset(str(tmp_path / "bad.h5"), args.pop("n"), args.pop("seed"), args.pop("lr_grid"),
                         args.pop("hr_grid"), progress=False, **args)


def test_unwritable_path():
    with pytest.raises(ValueError, match="not writable|does not exist"):
        _make("/nonexistent-dir/x.h5", n=4)


def test_readers_refuse_incomplete_and_foreign_files(tmp_path, reference):
    import shutil

    bad = tmp_path / "incomplete.h5"
    shutil.copy(reference, bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="incomplete"):
        load_dataset(bad)
    old = tmp_path / "old.h5"
    shutil.copy(reference, old)
    with h5py.File(old, "r+") as f:
        f.attrs["layout_version"] = 99
    with pytest.raises(ValueError, match="layout 99"):
        load_dataset(old)
    missing = tmp_path / "missing.h5"
    shutil.copy(reference, missing)
    with h5py.File(missing, "r+") as f:
        del f["split"]
    with pytest.raises(ValueError, match="missing /split"):
        load_dataset(missing)
    noth5 = tmp_path / "text.h5"
    noth5.write_text("hello")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        load_dataset(noth5)


def test_cli_generate_and_errors(tmp_path):
    from galsr.cli import main

    out = tmp_path / "cli.h5"
    assert main(["generate", "--n", "6", "--seed", "2", "--out", str(out), "--lr-npix", "4", "--hr-npix", "8",
                 "--workers", "1"]) == 0
    with load_dataset(out) as d:
        assert d.lr.shape == (6, 4, 4, 4) and d.hr.shape == (6, 4, 8, 8)
    assert main(["generate", "--n", "6", "--seed", "2", "--out", str(out)]) == 2  # exists
    assert main(["generate", "--n", "0", "--seed", "2", "--out", str(tmp_path / "y.h5")]) == 2
