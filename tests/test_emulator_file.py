"""The emulator file: round trip of plain tensors + JSON; refuses pickles, wrong versions, missing keys, bad shapes."""
import json
import pickle

import pytest
import torch

from galsr.emulator.file_format import FORMAT_VERSION, load_emulator, save_emulator
from galsr.emulator.architectures import build_model
from galsr.emulator.transform import MapTransform

HP = {"n0": 8, "ni": 4, "m": 1, "bicubic_skip": True, "two_stage_upsampling": True, "channels": 4,
      "per_channel_images": False}


def _metadata():
    tf = MapTransform([2.0, -300.0, 0.5, -1.0], [11.0, 300.0, 3.0, 1.3])
    grid = {"npix": 8, "pixel_kpc": 0.5, "psf_fwhm_pho_kpc": None, "psf_fwhm_kin_kpc": None, "oversample": 1,
            "centre_zoom": 0}
    return {"transform": tf.to_dict(), "lr_grid": dict(grid, npix=2, pixel_kpc=2.0), "hr_grid": grid,
            "redshift": 0.03, "param_names": ["p"] * 18, "bounds": [[0, 1]] * 18, "data_fingerprint": "abc",
            "val_metrics": {"l1": 0.01}, "training": {"epochs": 1}}


def _write(path, **overrides):
    torch.manual_seed(0)
    model = build_model("isrcnn", **HP)
    kw = dict(model_name="isrcnn", hparams=HP, state_dict=model.state_dict(), metadata=_metadata(),
              tensors={"error_maps": torch.rand(4, 8, 8)})
    kw.update(overrides)
    save_emulator(path, **kw)
    return model


def test_round_trip(tmp_path):
    path = tmp_path / "m.galsr"
    model = _write(path)
    ef = load_emulator(path)
    assert ef.model_name == "isrcnn" and ef.hparams == HP
    assert ef.metadata["format_version"] == FORMAT_VERSION and ef.metadata["val_metrics"] == {"l1": 0.01}
    assert all(torch.equal(ef.state_dict[k], v) for k, v in model.state_dict().items())
    assert ef.tensors["error_maps"].shape == (4, 8, 8)
    x = torch.rand(1, 4, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(ef.build_model()(x), model.eval()(x))
    # a plain weights_only load works: nothing but tensors, str, int, dict
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw["metadata_json"], str) and json.loads(raw["metadata_json"])["model_name"] == "isrcnn"
    assert not list(tmp_path.glob("*.tmp*"))  # atomic write leaves no temporary file


def _tamper(path, fn):
    raw = torch.load(path, weights_only=True)
    fn(raw)
    torch.save(raw, path)


def test_refuses_wrong_version_missing_keys_and_shapes(tmp_path):
    path = tmp_path / "m.galsr"
    _write(path)
    _tamper(path, lambda r: r.update(format_version=99))
    with pytest.raises(ValueError, match="format_version 99 is not supported"):
        load_emulator(path)

    _write(path)
    _tamper(path, lambda r: r.pop("tensors"))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['tensors'\]"):
        load_emulator(path)

    _write(path)

    def drop_meta(r):
        meta = json.loads(r["metadata_json"])
        del meta["transform"]
        r["metadata_json"] = json.dumps(meta)
    _tamper(path, drop_meta)
    with pytest.raises(ValueError, match=r"metadata is missing key\(s\) \['transform'\]"):
        load_emulator(path)

    _write(path)
    _tamper(path, lambda r: r["state_dict"].update({"extract.0.weight": torch.zeros(9, 4, 5, 5)}))
    with pytest.raises(ValueError, match="'extract.0.weight' has shape"):
        load_emulator(path)

    _write(path)
    _tamper(path, lambda r: r["tensors"].update(error_maps=torch.zeros(4, 7, 7)))
    with pytest.raises(ValueError, match="error_maps has shape"):
        load_emulator(path)

    _write(path)
    _tamper(path, lambda r: r["state_dict"].pop("mapping.0.weight"))
    with pytest.raises(ValueError, match="missing"):
        load_emulator(path)


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_refuses_pickles_and_foreign_files(tmp_path, capsys):
    path = tmp_path / "evil.galsr"
    with open(path, "wb") as fh:
        pickle.dump({"format": "galsr-emulator", "x": Payload()}, fh)
    with pytest.raises(ValueError, match="refused to load"):
        load_emulator(path)
    torch.save({"format": "galsr-emulator", "format_version": 1, "model": Payload()}, tmp_path / "evil2.galsr")
    capsys.readouterr()
    with pytest.raises(ValueError, match="refused to load"):
        load_emulator(tmp_path / "evil2.galsr")
    assert "pickled code ran" not in capsys.readouterr().out
    (tmp_path / "text.galsr").write_text("hello")
    with pytest.raises(ValueError, match="text.galsr"):
        load_emulator(tmp_path / "text.galsr")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.galsr")
    with pytest.raises(ValueError, match="not a galsr emulator file"):
        load_emulator(tmp_path / "other.galsr")
    with pytest.raises(ValueError, match="does not exist"):
        load_emulator(tmp_path / "none.galsr")


def test_save_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match=r"missing tensor\(s\) \['error_maps'\]"):
        _write(tmp_path / "a.galsr", tensors={})
    with pytest.raises(ValueError, match="metadata is missing"):
        _write(tmp_path / "b.galsr", metadata={"redshift": 0.03})
    with pytest.raises(ValueError, match="has shape"):
        _write(tmp_path / "c.galsr", hparams=dict(HP, n0=9))
    assert not (tmp_path / "c.galsr").exists()
