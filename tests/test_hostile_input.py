"""Hostile and careless input (issue 14): no code execution, no silent data loss, no hangs. One short test per case,
on real files in tmp_path; each also checks that nothing partial is left behind."""
import fcntl
import json
import math
import os
import pickle
import shutil
import socket
import stat

import numpy as np
import pytest
import torch
from astropy.io import fits

from tiny_data import TINY_HR, TINY_LR, write_tiny_dataset
from galsr.cli import main
from galsr.emulator import Emulator, default_path
from galsr.emulator.file_format import FORMAT, FORMAT_VERSION, atomic_torch_save, load_emulator
from galsr.fit_checkpoint import CHECKPOINT, MAC_SUFFIX, RECORD, key_file
from galsr.galaxy import read_galaxy, write_galaxy
from galsr.mock import example_parameters, make_mock
from galsr.simulator import EXAMPLE_GALAXY, Grid
from galsr.simulator.fileio import lock_path
from galsr.simulator.limits import GalsrNote, cap_workers

GRID = Grid.from_arcsec(12, 3.0, 0.03, 1.3, 2.5, oversample=2, centre_zoom=4)
FREE = ("log10_disc2_mass", "orientation", "inclination")
FIXED = {n: v for n, v in EXAMPLE_GALAXY.items() if n not in FREE}
FIT = dict(forward="simulator", nlive=10, workers=1, fixed=FIXED, seed=1)


def _fix_args(fixed=FIXED):
    return [a for n, v in fixed.items() for a in ("--fix", f"{n}={v}")]


@pytest.fixture(scope="module")
def mock_file(tmp_path_factory):
    return str(write_galaxy(tmp_path_factory.mktemp("mock") / "mock.fits",
                            make_mock(example_parameters(), seed=7, snr=20.0, grid=GRID)))


@pytest.fixture(scope="module")
def signed_fit(tmp_path_factory, mock_file):
    """A short real fit with a galsr-signed checkpoint (folder path)."""
    from galsr.fitting import fit

    out = tmp_path_factory.mktemp("signed") / "fit"
    fit(mock_file, maxcall=60, checkpoint_dir=out, checkpoint_every=0.0, **FIT)
    return out


@pytest.fixture
def fit_dir(tmp_path, signed_fit):
    return shutil.copytree(signed_fit, tmp_path / "fit")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5", n=12, seed=1)


def _resume(fit_dir, mock_file, **kw):
    from galsr.fitting import fit

    return fit(kw.pop("galaxy", mock_file), checkpoint_dir=fit_dir, resume=True, **dict(FIT, **kw))


# ------------------------------------------------------------------------------------------------ fit checkpoints
class _Payload:
    """A pickle that makes a folder when loaded: what an attacker would put in an output folder."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("tamper", ["replace checkpoint", "remove MAC", "remove record"])
def test_crafted_checkpoint_is_never_unpickled(fit_dir, mock_file, tmp_path, tamper):
    marker = str(tmp_path / "payload-ran")
    (fit_dir / CHECKPOINT).write_bytes(pickle.dumps({"sampler": _Payload(marker)}))
    if tamper == "remove MAC":
        os.remove(fit_dir / (CHECKPOINT + MAC_SUFFIX))
    if tamper == "remove record":
        os.remove(fit_dir / RECORD)
    with pytest.raises(ValueError, match=r"checkpoint\.save.*(MAC|cannot vouch)|cannot vouch"):
        _resume(fit_dir, mock_file)
    assert not os.path.exists(marker)


def test_a_save_cut_before_its_rename_still_resumes(fit_dir, monkeypatch):
    from galsr.fit_checkpoint import FitCheckpoint

    ckpt = FitCheckpoint(fit_dir, json.loads((fit_dir / RECORD).read_text())["identity"])
    ckpt.check_resumable()
    sampler, old = ckpt.restore(), (fit_dir / CHECKPOINT).read_bytes()
    real_replace = os.replace

    def killed_at_the_rename(src, dst):
        if os.fspath(dst) == ckpt.path:
            raise KeyboardInterrupt  # the process dies here: new MAC written, new checkpoint not yet in place
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_the_rename)
    with pytest.raises(KeyboardInterrupt):
        sampler.save(ckpt.path)
    monkeypatch.undo()
    assert (fit_dir / CHECKPOINT).read_bytes() == old
    assert FitCheckpoint(fit_dir, ckpt.identity).verified_bytes() == old  # the old checkpoint still resumes
    new = (fit_dir / (CHECKPOINT + ".new")).read_bytes()
    os.replace(ckpt.path + ".new", ckpt.path)  # and so would the new one, had the rename happened
    assert FitCheckpoint(fit_dir, ckpt.identity).verified_bytes() == new


def test_key_is_private_and_outside_the_output(signed_fit):
    key = key_file()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and os.path.getsize(key) == 32
    assert not os.path.abspath(key).startswith(os.path.abspath(signed_fit))


def test_truncated_checkpoint_is_one_clear_line(fit_dir, mock_file, capsys):
    data = (fit_dir / CHECKPOINT).read_bytes()
    (fit_dir / CHECKPOINT).write_bytes(data[:len(data) // 2])
    argv = ["fit", mock_file, "--forward", "simulator", "--nlive", "10", "--seed", "1", "--workers", "1",
            "--out", str(fit_dir), "--resume", *_fix_args()]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not match its MAC" in err and CHECKPOINT in err


@pytest.mark.parametrize("change, named", [
    ("galaxy", "galaxy data"), ("fixed", "fixed parameters"), ("nlive", "nlive: checkpoint 10, this run 20"),
    ("seed", "seed"), ("free", "free parameters"),
])
def test_resume_refuses_another_run_naming_what_differs(fit_dir, mock_file, tmp_path, change, named):
    kw = {"galaxy": dict(galaxy=str(write_galaxy(tmp_path / "other.fits", make_mock(example_parameters(), seed=8,
                                                                                     snr=20.0, grid=GRID)))),
          "fixed": dict(fixed=dict(FIXED, gamma=1.0)), "nlive": dict(nlive=20), "seed": dict(seed=2),
          "free": dict(fixed={k: v for k, v in FIXED.items() if k != "gamma"})}[change]
    before = sorted(os.listdir(fit_dir))
    with pytest.raises(ValueError, match=named):
        _resume(fit_dir, mock_file, **kw)
    assert sorted(os.listdir(fit_dir)) == before


def test_resumed_rates_count_every_session(fit_dir, mock_file):
    first = json.loads((fit_dir / RECORD).read_text())
    res = _resume(fit_dir, mock_file)  # the run is complete: no new calls, almost no new time
    run = res.run
    assert run["resumed"] and run["wall_time_s"] >= first["wall_time_s"] > 0
    assert run["calls_per_second"] == pytest.approx(run["n_likelihood_calls"] / run["wall_time_s"])


def test_too_short_fit_still_writes_its_outputs(tmp_path, mock_file):
    from galsr.fit_outputs import write_fit_outputs
    from galsr.fitting import fit

    res = fit(mock_file, forward="simulator", nlive=10, workers=1, fixed={"gamma": 1.2}, maxcall=12, seed=1)
    assert res.prior.ndim == 17 and len(res.equal_samples) <= 17
    with pytest.warns(GalsrNote, match="corner.png not drawn"):
        files = write_fit_outputs(res, tmp_path / "out")
    assert "corner.png" not in files and (tmp_path / "out" / "run.json").exists()


def test_workers_capped_at_the_cores_with_a_note(tmp_path, mock_file, capsys):
    with pytest.warns(GalsrNote, match="capped"):
        assert cap_workers(1000) == os.cpu_count()
    assert main(["fit", mock_file, "--workers", "1000", "--resume", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert f"note: --workers 1000 capped at this machine's {os.cpu_count()} cores" in err


# ------------------------------------------------------------------------------------------------ locks and guards
@pytest.mark.parametrize("job", ["generate", "train", "fit", "tune"])
def test_second_writer_is_refused(tmp_path, job, mock_file, tiny_dataset, capsys):
    out = tmp_path / {"generate": "d.h5", "train": "m.galsr", "fit": "fit", "tune": "tune"}[job]
    fd = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)  # another process's lock: flock is per open file
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    message = "another galsr process holds its lock"
    try:
        if job == "generate":
            from galsr.simulator import generate_dataset

            with pytest.raises(ValueError, match=message):
                generate_dataset(out, 4, 5, TINY_LR, TINY_HR, workers=1, overwrite=True, progress=False)
        elif job == "train":
            from galsr.training.train import train

            with pytest.raises(ValueError, match=message):
                train(tiny_dataset, out, epochs=1, progress=False)
        elif job == "fit":
            assert main(["fit", mock_file, "--out", str(out), "--forward", "simulator"]) == 2
            assert message in capsys.readouterr().err
        else:
            from galsr.training.tuning.driver import tune

            with pytest.raises(ValueError, match=message):
                tune(tiny_dataset, out, n_iterations=1, min_budget=1, max_budget=1, workers=1)
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(lock_path(out))]  # nothing written


def test_generate_resume_refuses_a_finished_file(tmp_path):
    from galsr.simulator import generate_dataset

    path = write_tiny_dataset(tmp_path / "d.h5", n=6, seed=5)
    before = open(path, "rb").read()
    with pytest.raises(ValueError, match=r"is complete.*n 6 in the file, 4 asked.*seed 5 in the file, 9 asked"):
        generate_dataset(path, 4, 9, TINY_LR, TINY_HR, workers=1, resume=True, progress=False)
    assert open(path, "rb").read() == before and sorted(os.listdir(tmp_path)) == ["d.h5"]


def test_train_guards_its_output(tmp_path, capsys):
    from galsr.training.train import train

    model = tmp_path / "m.galsr"
    model.write_bytes(b"an earlier model")
    with pytest.raises(ValueError, match="m.galsr exists; pass --overwrite"):
        train("unused.h5", model, epochs=1, progress=False)
    assert model.read_bytes() == b"an earlier model"
    with pytest.raises(ValueError, match="is a folder"):
        train("unused.h5", tmp_path, epochs=1, progress=False)
    assert main(["train", "unused.h5", "--out", str(tmp_path / "n.galsr"), "--threads", "-1"]) == 2
    assert "num_threads (--threads) must be an integer >= 1, got -1" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["m.galsr"]


def test_tune_names_a_busy_port(tmp_path):
    from galsr.training.tuning.driver import tune

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is not available"):
            tune(str(tmp_path / "unused.h5"), tmp_path / "t", n_iterations=1, min_budget=1, max_budget=1,
                 workers=1, port=port)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------------ input limits
@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("reader", ["galaxy", "emulator", "dataset", "config"])
def test_only_regular_files_are_read(tmp_path, kind, reader):
    from galsr.training.train import load_config
    from galsr.simulator import load_dataset

    path = "/dev/zero"
    if kind == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    read = {"galaxy": read_galaxy, "emulator": Emulator.load, "dataset": load_dataset, "config": load_config}[reader]
    with pytest.raises(ValueError, match=f"{path} is a {'FIFO' if kind == 'fifo' else 'device'}"):
        read(path)


def _header_card(key, value):
    return f"{key:<8}= {value:>20}".ljust(80).encode()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("damage, message", [
    ("huge header", r"extension FLUX claims a 100000 x 100000 image, more than the 4096 x 4096 accepted"),
    ("cut short", r"extension FLUX is truncated: its header announces data up to byte"),
])
def test_fits_sizes_checked_before_reading(tmp_path, mock_file, damage, message):
    data = open(mock_file, "rb").read()
    with fits.open(mock_file) as hdul:
        info, n = hdul["FLUX"].fileinfo(), hdul["FLUX"].header["NAXIS1"]
    if damage == "cut short":
        data = data[:info["datLoc"] + 8 * n * n // 2]
    else:
        header = data[info["hdrLoc"]:info["datLoc"]]
        for key in ("NAXIS1", "NAXIS2"):
            header = header.replace(_header_card(key, n), _header_card(key, 100000))
        data = data[:info["hdrLoc"]] + header + data[info["datLoc"]:]
    bad = tmp_path / "bad.fits"
    bad.write_bytes(data)
    with pytest.raises(ValueError, match=f"{bad}: {message}"):
        read_galaxy(bad)


def test_all_inf_map_is_not_called_nan(tmp_path, mock_file):
    with fits.open(mock_file) as hdul:
        hdul["FLUX"].data[:] = np.inf
        hdul.writeto(tmp_path / "inf.fits")
    with pytest.raises(ValueError, match=r"extension FLUX is all \+inf"):
        read_galaxy(tmp_path / "inf.fits")


def _write_raw_emulator(path, meta=None, state=None, tensors=None):
    """An emulator file written byte for byte as save_emulator would, but without its checks."""
    ef = load_emulator(default_path())
    atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION,
                       "metadata_json": json.dumps(dict(ef.metadata, **(meta or {}))),
                       "state_dict": dict(ef.state_dict, **(state or {})),
                       "tensors": dict(ef.tensors, **(tensors or {}))}, path)
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("edit, message", [
    (lambda ef: dict(state={k: torch.full_like(v, math.nan) for k, v in list(ef.state_dict.items())[:1]}),
     r"tensor 'extract\.0\.weight' holds \d+ NaN/inf"),
    (lambda ef: dict(tensors={"error_maps": torch.full_like(ef.tensors["error_maps"], math.nan)}),
     r"tensor 'error_maps' holds \d+ NaN/inf"),
    (lambda ef: dict(tensors={"error_maps": torch.full_like(ef.tensors["error_maps"], -1e6)}),
     r"tensor 'error_maps' holds negative errors"),
    (lambda ef: dict(meta={"hparams": dict(ef.hparams, n0=200000, ni=200000)}),
     r"n0 must be an integer >= 1 and <= 512, got 200000"),
    (lambda ef: dict(meta={"redshift": [0.03]}), r"metadata redshift must be a number in \(0, 20\), got \[0\.03\]"),
])
def test_bad_emulator_files_are_refused_at_load(tmp_path, edit, message):
    path = _write_raw_emulator(tmp_path / "bad.galsr", **edit(load_emulator(default_path())))
    with pytest.raises(ValueError, match=message):
        Emulator.load(path)


def test_emulator_refuses_parameters_outside_the_physical_cuts():
    emu = Emulator.default()
    with pytest.raises(ValueError, match=r"row 0 violate a physical cut .*: bulge radius .* > outer-disc radius"):
        emu(dict(EXAMPLE_GALAXY, log10_bulge_radius=1.4))


@pytest.mark.parametrize("text, key", [
    ('{"two_stage_upsampling": "false"}', "two_stage_upsampling must be true or false"),
    ('{"lr": Infinity}', "lr must be a finite number"), ('{"lr": [0.1]}', "lr must be a finite number"),
    ('{"beta1": null}', "beta1 must be a finite number"), ('{"lr": "fast"}', "lr must be a finite number"),
    ('{"n0": 100000}', "n0 must be >= 1 and <= 512"),
])
def test_training_config_values_are_typed_strictly(tmp_path, text, key):
    from galsr.training.train import load_config
    from galsr.training.train import resolve_config

    (tmp_path / "cfg.json").write_text(text)
    with pytest.raises(ValueError, match=f"training config: {key}"):
        resolve_config(load_config(tmp_path / "cfg.json"))
