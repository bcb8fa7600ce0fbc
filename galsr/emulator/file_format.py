"""The emulator file (``*.galsr``; docs/training.md): plain tensors + JSON text, never arbitrary pickles.

Layout: one ``torch.save``'d dict
    {"format": "galsr-emulator", "format_version": 1, "metadata_json": str,
     "state_dict": {name: tensor}, "tensors": {name: tensor}}
loaded with ``torch.load(weights_only=True)`` (which refuses pickled objects). ``metadata_json`` holds model_name,
hparams, transform, lr_grid, hr_grid, redshift, param_names, bounds, data_fingerprint, val_metrics, training.
``tensors["error_maps"]`` is (C, n_hr, n_hr) float32: the per-pixel emulator RMS error in physical units (brightness
in dex), used by the fit likelihood.
"""
import io
import json
import os
import warnings
from dataclasses import dataclass, field

import torch

from galsr.simulator.fileio import atomic_path
from galsr.simulator.limits import regular_file

FORMAT = "galsr-emulator"
FORMAT_VERSION = 1
TOP_KEYS = ("format", "format_version", "metadata_json", "state_dict", "tensors")
METADATA_KEYS = ("format_version", "galsr_version", "model_name", "hparams", "transform", "lr_grid", "hr_grid",
                 "redshift", "param_names", "bounds", "data_fingerprint", "val_metrics", "training")
REQUIRED_TENSORS = ("error_maps",)
#: Largest emulator or training-checkpoint file read (bytes): the biggest network within HPARAM_LIMITS with its
#: optimiser state stays below it.
MAX_FILE_BYTES = 2**32


@dataclass
class EmulatorFile:
    """Contents of an emulator file.

    Attributes:
        model_name: str, key of training.models.MODEL_REGISTRY.
        hparams: dict, build_model keyword arguments.
        state_dict: dict name -> torch.Tensor (float32 weights).
        metadata: dict (plain JSON; keys METADATA_KEYS).
        tensors: dict name -> torch.Tensor ("error_maps": (C, n_hr, n_hr)).
        path: str or None, where it was loaded from.
    """

    model_name: str
    hparams: dict
    state_dict: dict
    metadata: dict
    tensors: dict = field(default_factory=dict)
    path: str | None = None

    def build_model(self):
        """The network with its weights loaded, in eval mode."""
        from galsr.emulator.architectures import build_model

        model = build_model(self.model_name, **self.hparams)
        model.load_state_dict(self.state_dict)
        return model.eval()


def _galsr_version():
    try:
        from importlib.metadata import version

        return version("galsr")
    except Exception:  # noqa: BLE001 - not installed
        return "unknown"


def save_emulator(path, *, model_name, hparams, state_dict, metadata, tensors):
    """Write an emulator file atomically (temporary file in the same directory + os.replace).

    Args:
        path: str or Path of the ``*.galsr`` file.
        model_name, hparams: architecture (training.models.build_model(model_name, **hparams)).
        state_dict: dict name -> tensor (saved as contiguous float32 CPU tensors).
        metadata: dict of plain JSON values; format_version, galsr_version, model_name and hparams are filled in;
            the other METADATA_KEYS must be present.
        tensors: dict name -> tensor, at least "error_maps".
    """
    meta = dict(metadata)
    meta.update(format_version=FORMAT_VERSION, model_name=model_name, hparams=dict(hparams))
    meta.setdefault("galsr_version", _galsr_version())
    _check_metadata(meta, str(path))
    missing = [k for k in REQUIRED_TENSORS if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensor(s) {missing}")
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata_json": json.dumps(meta, sort_keys=True, allow_nan=True),
        "state_dict": {k: _plain(v) for k, v in state_dict.items()},
        "tensors": {k: _plain(v) for k, v in tensors.items()},
    }
    _check_shapes(model_name, meta["hparams"], blob["state_dict"], blob["tensors"], meta, str(path))
    atomic_torch_save(blob, path)
    return str(path)


def atomic_torch_save(obj, path):
    """torch.save ``obj`` to ``path`` through a temporary file in the same directory and os.replace."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)


def safe_torch_load(path, what="file"):
    """torch.load(weights_only=True) with ValueError (naming the file) for pickles, foreign or corrupt files, and
    for anything but a regular file of at most MAX_FILE_BYTES."""
    path = regular_file(path, what, MAX_FILE_BYTES)  # a FIFO or device would be read forever
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ValueError(f"{what} {path!r} cannot be read ({exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, KeyError, RuntimeError, ... all mean "refused"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"{path}: refused to load as a {what}: not plain tensors/JSON or corrupt "
                         f"(weights_only load failed: {type(exc).__name__} {text[:200]})") from None


def load_container(path, fmt, version, keys, what):
    """safe_torch_load + the checks every galsr container shares: a dict of format ``fmt``, ``format_version``
    ``version``, holding ``keys``. Returns the dict; ValueError naming the file otherwise."""
    blob = safe_torch_load(path, what)
    path = os.fspath(path)
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: not a galsr {what} (format {found!r}, expected {fmt!r})")
    if blob.get("format_version") != version:
        raise ValueError(f"{path}: {what} format_version {blob.get('format_version')!r} is not supported "
                         f"(expected {version})")
    missing = [k for k in keys if k not in blob]
    if missing:
        raise ValueError(f"{path}: {what} is missing key(s) {missing}")
    return blob


def load_emulator(path):
    """Read and validate an emulator file; returns EmulatorFile.

    Raises ValueError (naming the file) for pickled/foreign files, a wrong format version, missing keys or
    metadata of the wrong type, hyperparameters outside HPARAM_LIMITS, weights/tensors whose shapes do not match
    the architecture and grids in the metadata (checked before anything is allocated), NaN/inf weights, and
    NaN/inf/negative error maps (naming the tensor).
    """
    blob = load_container(path, FORMAT, FORMAT_VERSION, TOP_KEYS, "emulator file")
    path = os.fspath(path)
    try:
        meta = json.loads(blob["metadata_json"])
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: metadata_json is not valid JSON ({exc})") from None
    _check_metadata(meta, path)
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: metadata format_version {meta['format_version']!r} != {FORMAT_VERSION}")
    for key in ("state_dict", "tensors"):
        if not isinstance(blob[key], dict) or not all(isinstance(v, torch.Tensor) for v in blob[key].values()):
            raise ValueError(f"{path}: {key} must be a dict of tensors")
    missing = [k for k in REQUIRED_TENSORS if k not in blob["tensors"]]
    if missing:
        raise ValueError(f"{path}: missing tensor(s) {missing}")
    _check_shapes(meta["model_name"], meta["hparams"], blob["state_dict"], blob["tensors"], meta, path)
    _check_values(blob["state_dict"], blob["tensors"], path)
    return EmulatorFile(meta["model_name"], meta["hparams"], blob["state_dict"], meta, blob["tensors"], path)


def _plain(t):
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.float()
    return t.contiguous().clone()


def _check_metadata(meta, path):
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata must be a JSON object")
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: metadata is missing key(s) {missing}")
    from galsr.emulator.architectures import MODEL_REGISTRY

    if meta["model_name"] not in MODEL_REGISTRY:
        raise ValueError(f"{path}: unknown model_name {meta['model_name']!r}; expected one of "
                         f"{sorted(MODEL_REGISTRY)}")
    if not isinstance(meta["hparams"], dict):
        raise ValueError(f"{path}: hparams must be a JSON object")
    z = meta["redshift"]
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not 0 < z < 20:
        raise ValueError(f"{path}: metadata redshift must be a number in (0, 20), got {z!r}")
    for key in ("lr_grid", "hr_grid", "transform"):
        if not isinstance(meta[key], dict):
            raise ValueError(f"{path}: metadata {key} must be a JSON object, got {type(meta[key]).__name__}")
    if not isinstance(meta["param_names"], list) or not isinstance(meta["bounds"], list):
        raise ValueError(f"{path}: metadata param_names and bounds must be lists")


def _check_shapes(model_name, hparams, state_dict, tensors, meta, path):
    """The weights match the architecture exactly; error maps match (C, n_hr, n_hr) of the HR grid. The reference
    network is built on torch's "meta" device: shapes without storage, so nothing is allocated for them."""
    from galsr.emulator.architectures import build_model

    try:
        with torch.device("meta"):
            reference = build_model(model_name, **hparams).state_dict()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build {model_name} with hparams {hparams}: {exc}") from None
    missing = sorted(set(reference) - set(state_dict))
    extra = sorted(set(state_dict) - set(reference))
    if missing or extra:
        raise ValueError(f"{path}: weights do not match {model_name}{hparams}: missing {missing[:5]}, "
                         f"unexpected {extra[:5]}")
    for k, ref in reference.items():
        if tuple(state_dict[k].shape) != tuple(ref.shape):
            raise ValueError(f"{path}: weight {k!r} has shape {tuple(state_dict[k].shape)}, expected "
                             f"{tuple(ref.shape)} for {model_name}{hparams}")
    n_hr = meta["hr_grid"]["npix"] if isinstance(meta.get("hr_grid"), dict) else None
    n_ch = len(meta["transform"]["channels"]) if isinstance(meta.get("transform"), dict) else None
    em = tensors["error_maps"]
    if n_hr is not None and n_ch is not None and tuple(em.shape) != (n_ch, n_hr, n_hr):
        raise ValueError(f"{path}: error_maps has shape {tuple(em.shape)}, expected {(n_ch, n_hr, n_hr)} "
                         f"(channels, HR grid npix)")


def _check_values(state_dict, tensors, path):
    """ValueError naming the tensor for NaN/inf weights and NaN/inf/negative error maps (they would give all-NaN
    maps, or a likelihood that ignores the data)."""
    for name, t in list(state_dict.items()) + [("error_maps", tensors["error_maps"])]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{path}: tensor {name!r} holds {int((~torch.isfinite(t)).sum())} NaN/inf value(s)")
    if bool((tensors["error_maps"] < 0).any()):
        raise ValueError(f"{path}: tensor 'error_maps' holds negative errors (min "
                         f"{float(tensors['error_maps'].min()):.3g}); RMS errors are >= 0")
