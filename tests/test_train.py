"""Training loop: config checks, learning on a tiny dataset, exact resume, CLI, log files."""
import csv
import json

import numpy as np
import pytest
import torch

from tiny_data import write_tiny_dataset
from galsr.training.checkpoint import load_checkpoint
from galsr.simulator.dataset_file import open_dataset_file
from galsr.training.data import PairDataset
from galsr.emulator.file_format import load_emulator
from galsr.training.metrics import evaluate_model
from galsr.emulator.architectures import build_model
from galsr.training.train import resolve_config, train
from galsr.emulator.transform import MapTransform

FAST = {"batch_size": 8, "lr": 1e-3, "n0": 12, "ni": 6, "m": 2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny.h5", n=60, seed=2)


def _weights(path):
    return load_checkpoint(path)["model"]


def test_resolve_config_defaults_and_errors():
    cfg = resolve_config()
    assert (cfg["n0"], cfg["ni"], cfg["m"], cfg["lr"], cfg["batch_size"]) == (60, 16, 8, 0.0035, 32)
    assert resolve_config({"model": "fsrcnn"})["n0"] == 56
    assert resolve_config(epochs=3)["epochs"] == 3
    with pytest.raises(ValueError, match="unknown key"):
        resolve_config({"learning_rate": 1})
    with pytest.raises(ValueError, match="unknown model"):
        resolve_config({"model": "srgan"})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        resolve_config({"batch_size": 0})
    with pytest.raises(ValueError, match="beta2"):
        resolve_config({"beta2": 1.5})


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "m.galsr"
    res = train(dataset, out, {"batch_size": 8, "lr": 1e-3, "residual_scale": 0.1}, epochs=6, seed=0,
                progress=False)
    return out, res


def test_training_lowers_loss_and_beats_bicubic(dataset, trained):
    out, res = trained
    vals = [h["val_l1"] for h in res.history]
    assert res.best_val_l1 == min(vals) < vals[0]
    ef = load_emulator(out)
    tf = MapTransform.from_dict(ef.metadata["transform"])
    bicubic = evaluate_model(build_model("bicubic"), PairDataset(dataset, "val", tf)).l1
    assert res.best_val_l1 < bicubic
    # the stored weights are the best-validation ones
    again = evaluate_model(ef.build_model(), PairDataset(dataset, "val", tf)).l1
    assert again == pytest.approx(res.best_val_l1, rel=1e-5)
    m = ef.metadata["val_metrics"]
    assert m["epoch"] == res.best_epoch and set(m["median_error"]) == {"B", "v", "sigma", "ML"}
    assert all(np.isfinite(v) for v in m["median_error"].values())
    assert tuple(ef.tensors["error_maps"].shape) == (4, 20, 20)
    assert torch.all(ef.tensors["error_maps"] >= 0)
    rows = list(csv.DictReader(open(str(out) + ".log.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7))
    log = json.loads(out.with_name("m.galsr.log.json").read_text())
    assert log["best_epoch"] == res.best_epoch and [h["val_l1"] for h in log["history"]] == vals
    assert out.with_name("m.galsr.loss.png").stat().st_size > 1000


def test_evaluate_side_by_side(dataset, trained, tmp_path, capsys):
    from galsr.cli import main
    from galsr.training.evaluate import evaluate

    out, res = trained
    fsrcnn = tmp_path / "fsrcnn.galsr"  # another transform (log10 of B only): scored in the emulator's space
    train(dataset, fsrcnn, {"model": "fsrcnn", "batch_size": 8, "lr": 1e-3, "log_channels": ["B"]},
          epochs=1, seed=0, progress=False)
    ev = evaluate(out, dataset, baselines=[fsrcnn], out_dir=tmp_path / "eval", n_examples=1, latency=True,
                  latency_repeats=3)
    assert ev["order"] == ["isrcnn", "fsrcnn", "bicubic"]
    m = ev["models"]
    assert m["isrcnn"]["l1"] == pytest.approx(res.best_val_l1, rel=1e-5)
    assert m["isrcnn"]["l1"] < m["bicubic"]["l1"] and m["isrcnn"]["l1"] < m["fsrcnn"]["l1"]
    assert m["isrcnn"]["psnr_db"] > m["bicubic"]["psnr_db"]
    for label, metrics in m.items():
        values = [metrics["l1"], metrics["psnr_db"], *metrics["median_error"].values(),
                  *metrics["p95_error"].values(), *metrics["latency_ms"].values()]
        assert all(np.isfinite(v) and v >= 0 for v in values), label
        assert all(metrics["median_error"][c] <= metrics["p95_error"][c] for c in metrics["median_error"])
    assert set(m["isrcnn"]["latency_ms"]) == {"network_b1", "network_b64", "emulator_b1", "emulator_b64"}
    for name in ("metrics", "table", "figure"):
        assert (tmp_path / "eval").joinpath(ev["files"][name].rsplit("/", 1)[-1]).stat().st_size > 100
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["order"] == ev["order"]
    # by distance from the centre: every emulator and bicubic, with calibration shares for the emulators only
    regions = ev["regions"]
    assert set(regions) == {"isrcnn", "fsrcnn", "bicubic"}
    inner = regions["isrcnn"]["by_band"][regions["isrcnn"]["bands"][0]]["B"]
    assert inner["n_pixels"] > 0 and 0 <= inner["median"] <= inner["p95"]
    assert 0 <= inner["within_1sigma"] <= inner["within_2sigma"] <= 1
    assert "within_1sigma" not in regions["bicubic"]["by_band"]["0-1"]["B"]
    assert "By distance from the galaxy centre" in (tmp_path / "eval" / "table.md").read_text()
    assert main(["evaluate", str(out), dataset, "--no-latency", "--max-val", "5"]) == 0
    assert "| isrcnn |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="differs from the dataset"):
        other = write_tiny_dataset(tmp_path / "other.h5", n=6, seed=1, lr_grid=__import__("simulator").Grid(4, 2.0),
                                   hr_grid=__import__("simulator").Grid(16, 0.5))
        evaluate(out, other, latency=False)


def test_resume_is_exact(dataset, tmp_path):
    full, part = tmp_path / "full.galsr", tmp_path / "part.galsr"
    train(dataset, full, FAST, epochs=4, seed=7, progress=False)
    train(dataset, part, FAST, epochs=2, seed=7, progress=False)
    assert load_checkpoint(str(part) + ".ckpt")["epoch"] == 2
    res = train(dataset, part, FAST, epochs=4, seed=7, resume=True, progress=False)
    a, b = _weights(str(full) + ".ckpt"), _weights(str(part) + ".ckpt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = load_checkpoint(str(full) + ".ckpt"), load_checkpoint(str(part) + ".ckpt")
    assert [h["val_l1"] for h in ca["state"]["history"]] == [h["val_l1"] for h in res.history]
    assert ca["optimizer"]["state"][0]["step"] == cb["optimizer"]["state"][0]["step"]
    ea, eb = load_emulator(full), load_emulator(part)
    assert all(torch.equal(ea.state_dict[k], eb.state_dict[k]) for k in ea.state_dict)


def test_resume_refuses_other_config_or_seed(dataset, tmp_path):
    out = tmp_path / "r.galsr"
    train(dataset, out, FAST, epochs=1, seed=1, progress=False)
    with pytest.raises(ValueError, match="different config: lr"):
        train(dataset, out, dict(FAST, lr=0.01), epochs=2, seed=1, resume=True, progress=False)
    with pytest.raises(ValueError, match="seed"):
        train(dataset, out, FAST, epochs=2, seed=2, resume=True, progress=False)


def test_per_channel_images_and_fsrcnn_train(dataset, tmp_path):
    res = train(dataset, tmp_path / "p.galsr", dict(FAST, per_channel_images=True), epochs=1, progress=False)
    ef = load_emulator(tmp_path / "p.galsr")
    assert ef.hparams["per_channel_images"] is True and np.isfinite(res.best_val_l1)
    train(dataset, tmp_path / "f.galsr", {"model": "fsrcnn", "batch_size": 8}, epochs=1, progress=False)
    assert load_emulator(tmp_path / "f.galsr").model_name == "fsrcnn"
    with pytest.raises(ValueError, match="bicubic"):
        train(dataset, tmp_path / "b.galsr", {"model": "bicubic"}, epochs=1, progress=False)


def test_incomplete_dataset_refused(dataset, tmp_path):
    import shutil

    import h5py

    bad = tmp_path / "bad.h5"
    shutil.copy(dataset, bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset_file(bad)
    with pytest.raises(ValueError, match="does not exist"):
        train(tmp_path / "missing.h5", tmp_path / "x.galsr", epochs=1, progress=False)


def test_cli_train_and_resume(dataset, tmp_path, capsys):
    from galsr.cli import main

    out = tmp_path / "cli.galsr"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(FAST))
    assert main(["train", dataset, "--out", str(out), "--config", str(cfg), "--epochs", "1", "--seed", "3"]) == 0
    assert main(["train", dataset, "--out", str(out), "--config", str(cfg), "--epochs", "2", "--seed", "3",
                 "--resume"]) == 0
    assert "best validation L1" in capsys.readouterr().out
    assert load_checkpoint(str(out) + ".ckpt")["epoch"] == 2
    cfg.write_text("[1, 2]")
    assert main(["train", dataset, "--out", str(out), "--config", str(cfg)]) == 2
    assert "expected a JSON object" in capsys.readouterr().err


def test_lazy_and_in_memory_datasets_agree(dataset):
    mem = PairDataset(dataset, "val", in_memory=True)
    lazy = PairDataset(dataset, "val", in_memory=False)
    assert len(mem) == len(lazy) and mem.in_memory and not lazy.in_memory
    idx = np.array([3, 0, len(mem) - 1, 3])
    for a, b in zip(mem.batch(idx), lazy.batch(idx)):
        assert torch.equal(a, b)
    x, y = lazy[1]
    assert x.shape == (4, 5, 5) and y.shape == (4, 20, 20)
    lazy.close()
    train_rows, val_rows = PairDataset(dataset, "train").rows, mem.rows
    assert not set(train_rows) & set(val_rows)
    with pytest.raises(ValueError, match="split must be one of"):
        PairDataset(dataset, "test")
