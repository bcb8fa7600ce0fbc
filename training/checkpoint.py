"""Training checkpoints (``<out>.ckpt``): everything an exact resume needs, as plain tensors + JSON.

Contents: epoch, model weights, best weights, optimiser and scheduler states, torch / numpy / python RNG states,
history, config, seed and dataset fingerprint. Written atomically every epoch; loaded with weights_only=True.
"""
import json
import random

import numpy as np
import torch

from galsr.emulator.file_format import atomic_torch_save, load_container

FORMAT = "galsr-checkpoint"
FORMAT_VERSION = 1
KEYS = ("format", "format_version", "epoch", "model", "best_model", "optimizer", "scheduler", "rng", "state_json",
        "tensors")


def rng_state():
    """torch, numpy and python RNG states as tensors / JSON text (weights_only-loadable)."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "numpy_json": json.dumps([np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])]),
            "python_json": json.dumps(random.getstate(), default=list)}


def set_rng_state(state):
    """Inverse of ``rng_state``."""
    torch.set_rng_state(state["torch"])
    name, pos, has_gauss, cached = json.loads(state["numpy_json"])
    np.random.set_state((name, state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = json.loads(state["python_json"])
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path, *, epoch, model, best_model, optimizer, scheduler, state, tensors=None):
    """Write a checkpoint atomically.

    Args:
        path: str, the ``.ckpt`` file.
        epoch: int, epochs completed.
        model, best_model: state dicts (current and best-validation weights).
        optimizer, scheduler: their state_dict()s.
        state: dict of plain JSON (history, best_val_l1, config, seed, data_fingerprint, ...).
        tensors: dict name -> tensor (or None values, dropped), e.g. the best epoch's error maps.
    """
    atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION, "epoch": int(epoch), "model": model,
                       "best_model": best_model, "optimizer": optimizer, "scheduler": scheduler,
                       "rng": rng_state(), "state_json": json.dumps(state),
                       "tensors": {k: v for k, v in (tensors or {}).items() if v is not None}}, path)


def load_checkpoint(path):
    """Read a checkpoint; returns dict with KEYS and ``state`` (parsed state_json). ValueError if invalid."""
    blob = load_container(path, FORMAT, FORMAT_VERSION, KEYS, "training checkpoint")
    blob["state"] = json.loads(blob["state_json"])
    return blob
