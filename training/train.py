"""Training loop of the super-resolution networks (thesis chapter 6): L1 loss, Adam, ReduceLROnPlateau, seeded,
atomic per-epoch checkpoints with an exact resume, best-validation weights written as an emulator file.

Outputs next to ``out_path`` (``model.galsr``): ``model.galsr.ckpt`` (resume state), ``model.galsr.log.csv``
(epoch, train_l1, val_l1, lr, seconds), ``model.galsr.log.json`` (the same with config, seed and best epoch),
``model.galsr.loss.png`` (loss curves).
"""
import copy
import csv
import io
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from galsr.simulator.centre_patch import PATCH_RULE, rule_to_dict
from galsr.simulator.fileio import exclusive_lock, save_figure, write_text_atomic
from galsr.simulator.limits import whole_number
from galsr.training.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from galsr.training.data import PairDataset, dataset_info
from galsr.emulator.file_format import save_emulator
from galsr.training.metrics import evaluate_model, l1, with_patch
from galsr.emulator.architectures import HPARAM_LIMITS, MODEL_HPARAMS, build_model, check_model_name, n_parameters
from galsr.emulator.transform import MapTransform

#: Training defaults = the thesis's recipe (sections 5.5, 6.2) + the transform's log channels.
DEFAULT_CONFIG = {"model": "isrcnn", "n0": 60, "ni": 16, "m": 8, "bicubic_skip": True, "two_stage_upsampling": True,
                  "lr": 0.0035, "beta1": 0.957, "beta2": 0.929, "batch_size": 32, "epochs": 400,
                  "plateau_factor": 0.5, "plateau_patience": 10, "per_channel_images": False,
                  "log_channels": ["B", "sigma", "ML"], "residual_scale": 1.0,
                  "centre_patch": 0}
#: Architecture defaults per model (used when a config names a model but not its sizes).
MODEL_DEFAULTS = {"isrcnn": {"n0": 60, "ni": 16, "m": 8, "bicubic_skip": True, "two_stage_upsampling": True},
                  "fsrcnn": {"n0": 56, "ni": 12, "m": 4, "bicubic_skip": False, "two_stage_upsampling": False},
                  "bicubic": {}}
#: Seconds between loss-curve redraws during a run (it is always drawn at the end).
PLOT_EVERY_S = 60.0
#: Integer config keys: [low, high] (network sizes bounded by the architectures' limits).
INT_RANGES = {**{k: HPARAM_LIMITS[k] for k in ("n0", "ni", "m")}, "batch_size": (1, 65536), "epochs": (1, 10**6),
              "plateau_patience": (0, 10**6), "centre_patch": (0, 4096)}
#: Real config keys: (low, high, (low included, high included)).
FLOAT_RANGES = {"lr": (0.0, 1.0, (False, True)), "beta1": (0.0, 1.0, (True, False)),
                "beta2": (0.0, 1.0, (True, False)), "plateau_factor": (0.0, 1.0, (True, False)),
                "residual_scale": (0.0, 1e3, (False, True))}
#: Keys whose change between sessions does not prevent a resume.
RESUMABLE_CHANGES = ("epochs",)


@dataclass
class TrainResult:
    """Outcome of ``train``.

    Attributes:
        best_val_l1: float, best validation L1 (normalised maps).
        history: list of dicts {epoch, train_l1, val_l1, lr, seconds} (all sessions).
        out_path: str, the emulator file (best-validation weights).
        best_epoch: int.
        val_metrics: dict, final validation metrics of the best weights.
        config: dict, the resolved config.
    """

    best_val_l1: float
    history: list
    out_path: str
    best_epoch: int = 0
    val_metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)


def load_config(path):
    """A JSON object from ``path``, a regular file of at most 1 MiB (ValueError naming the file otherwise)."""
    from galsr.simulator.limits import regular_file

    try:
        with open(regular_file(path, "config", max_bytes=1 << 20)) as fh:
            cfg = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"config {path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"config {path}: expected a JSON object, got {type(cfg).__name__}")
    return cfg


def resolve_config(config=None, epochs=None):
    """Thesis defaults + the model's architecture defaults + ``config``; ValueError naming the key for unknown keys
    and for values of the wrong JSON type (booleans must be true/false, numbers finite and in INT_RANGES /
    FLOAT_RANGES: a string "false" or an lr of Infinity, [0.1] or null is refused, not coerced)."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"training config: unknown key(s) {unknown}; expected keys from {sorted(DEFAULT_CONFIG)}")
    name = config.get("model", DEFAULT_CONFIG["model"])
    if not isinstance(name, str):
        raise ValueError(f"training config: model must be a model name, got {name!r}")
    check_model_name(name)
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(MODEL_DEFAULTS[name])
    cfg.update(config)
    if epochs is not None:
        cfg["epochs"] = epochs
    for key, (lo, hi) in INT_RANGES.items():
        v = cfg[key]
        whole = isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
        if isinstance(v, (bool, np.bool_)) or not whole:
            raise ValueError(f"training config: {key} must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"training config: {key} must be >= {lo} and <= {hi}, got {v!r}")
        cfg[key] = int(v)
    for key, (lo, hi, closed) in FLOAT_RANGES.items():
        v = cfg[key]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(v) or not (lo < v or (closed[0] and v == lo)) \
                or not (v < hi or (closed[1] and v == hi)):
            interval = "[("[not closed[0]] + f"{lo:g}, {hi:g}" + "])"[not closed[1]]
            raise ValueError(f"training config: {key} must be a finite number in {interval}, got {v!r}")
        cfg[key] = float(v)
    for key in ("bicubic_skip", "two_stage_upsampling", "per_channel_images"):
        if not isinstance(cfg[key], (bool, np.bool_)):
            raise ValueError(f"training config: {key} must be true or false (a JSON boolean), got {cfg[key]!r}")
        cfg[key] = bool(cfg[key])
    if not isinstance(cfg["log_channels"], (list, tuple)) or not all(isinstance(c, str) for c in cfg["log_channels"]):
        raise ValueError(f"training config: log_channels must be a list of channel names, got "
                         f"{cfg['log_channels']!r}")
    cfg["log_channels"] = list(cfg["log_channels"])
    return cfg


def network_hparams(cfg, n_channels):
    """build_model keyword arguments of a resolved config for ``n_channels`` map channels."""
    hp = {k: cfg[k] for k in MODEL_HPARAMS[cfg["model"]] if k in cfg}
    hp["channels"] = int(n_channels)
    return hp


def seed_everything(seed):
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_permutation(n, seed, epoch):
    """Shuffling order of epoch ``epoch`` (1-based): a torch.Generator seeded from (seed, epoch) only, so a resumed
    run draws exactly the batches of an uninterrupted one."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).numpy()


def _progress(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", disable=None if progress else True, leave=True,
                dynamic_ncols=True)


def build_metadata(info, transform, cfg, seed, history, best_epoch, val_metrics, dataset_path, elapsed_s):
    """Emulator metadata (plain JSON) of a training run."""
    return {
        "transform": transform.to_dict(),
        "lr_grid": info["lr_grid"],
        "hr_grid": info["hr_grid"],
        "redshift": info["redshift"],
        "param_names": info["param_names"],
        "bounds": info["bounds"],
        "channels": info["channels"],
        "units": info["units"],
        "data_fingerprint": info["fingerprint"],
        "centre_patch": cfg["centre_patch"],
        "patch_rule": rule_to_dict(PATCH_RULE) if cfg["centre_patch"] else None,
        "val_metrics": val_metrics,
        "training": {"config": cfg, "seed": int(seed), "epochs_trained": len(history), "best_epoch": best_epoch,
                     "history": history, "dataset": os.path.basename(os.fspath(dataset_path)),
                     "n_train": info.get("n_train_used"), "n_val": info.get("n_val_used"),
                     "train_seconds": elapsed_s},
    }


def write_log_csv(path, history):
    """Write the per-epoch history as CSV atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["epoch", "train_l1", "val_l1", "lr", "seconds"], lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in w.fieldnames})
    write_text_atomic(path, buf.getvalue())


def plot_loss(path, history, title=""):
    """Loss-curve PNG (train and validation L1 vs epoch, log y), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [h["train_l1"] for h in history], label="train L1")
    ax.plot(ep, [h["val_l1"] for h in history], label="validation L1")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("L1 (normalised maps)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def _check_resume(ckpt_path, state, cfg, seed, fingerprint, subset):
    old = dict(DEFAULT_CONFIG, **MODEL_DEFAULTS[state["config"].get("model", "isrcnn")])
    old.update(state["config"])  # keys added to the config since the checkpoint keep their defaults
    diff = sorted(k for k in set(old) | set(cfg) if k not in RESUMABLE_CHANGES and old.get(k) != cfg.get(k))
    if diff:
        raise ValueError(f"{ckpt_path}: cannot resume with a different config: "
                         + ", ".join(f"{k}: {old.get(k)!r} -> {cfg.get(k)!r}" for k in diff))
    if int(state["seed"]) != int(seed):
        raise ValueError(f"{ckpt_path}: cannot resume with seed {seed}, the checkpoint was made with {state['seed']}")
    if state["data_fingerprint"] != fingerprint:
        raise ValueError(f"{ckpt_path}: the dataset differs from the checkpoint's (fingerprint "
                         f"{fingerprint} != {state['data_fingerprint']})")
    for key, value in subset.items():
        if state.get(key) != value:
            raise ValueError(f"{ckpt_path}: cannot resume with {key}={value!r}, the checkpoint used {state.get(key)!r}")


def train(dataset_path, out_path, config=None, *, epochs=None, seed=0, resume=False, overwrite=False, progress=True,
          max_train=None, max_val=None, num_threads=None, time_limit_s=None):
    """Train a network on a galsr dataset file; write the best-validation emulator file to ``out_path``.

    Args:
        dataset_path: str, complete galsr HDF5 dataset (training rows: split 0, validation rows: split 1).
        out_path: str, emulator file to write (``*.galsr``); ``<out>.ckpt``, ``<out>.log.csv``, ``<out>.loss.png``
            are written next to it.
        config: dict or None, training config (keys of DEFAULT_CONFIG; thesis defaults).
        epochs: int or None, total epochs (overrides config["epochs"]); with ``resume`` the run continues to it.
        seed: int, seeds initialisation and the per-epoch shuffling.
        resume: bool, continue from ``<out>.ckpt`` if it exists (same config but epochs, seed and data; else
            ValueError); without a checkpoint the run starts fresh (unless ``out_path`` exists: ValueError).
        overwrite: bool, replace an existing ``out_path`` or ``<out>.ckpt`` (without ``resume`` or ``overwrite`` an
            existing one is refused, naming it). ``out_path`` is locked while training runs (a second writer is
            refused) and must not be a folder.
        progress: bool, a tqdm bar per epoch (shown only on a terminal).
        max_train, max_val: int or None, use only the first rows of each split.
        num_threads: int >= 1 or None, torch.set_num_threads.
        time_limit_s: float or None, stop after the epoch during which this many seconds (this session) passed.

    Returns:
        TrainResult.
    """
    cfg = resolve_config(config, epochs)
    if cfg["model"] == "bicubic":
        raise ValueError("model 'bicubic' has no parameters to train; use it directly in evaluate")
    if num_threads is not None:
        num_threads = whole_number(num_threads, "num_threads (--threads)")
    out_path = os.fspath(out_path)
    ckpt_path = out_path + ".ckpt"
    if os.path.isdir(out_path):
        raise ValueError(f"--out {out_path} is a folder; name the emulator file to write, e.g. "
                         f"{os.path.join(out_path, 'model.galsr')}")
    existing = [p for p in (out_path, ckpt_path) if os.path.exists(p)]
    if existing and not overwrite and not (resume and os.path.exists(ckpt_path)):
        raise ValueError(f"{existing[0]} exists; pass --overwrite to train afresh over it"
                         + ("" if resume else " (or --resume to continue its training)"))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with exclusive_lock(out_path):
        return _train_locked(dataset_path, out_path, ckpt_path, cfg, seed, resume, progress, max_train, max_val,
                             num_threads, time_limit_s)


def _train_locked(dataset_path, out_path, ckpt_path, cfg, seed, resume, progress, max_train, max_val, num_threads,
                  time_limit_s):
    if num_threads:
        torch.set_num_threads(num_threads)

    info = dataset_info(dataset_path)
    transform = MapTransform.from_stats(info["stats"], channels=info["channels"], log_channels=cfg["log_channels"])
    train_ds = PairDataset(dataset_path, "train", transform, limit=max_train, centre_patch=cfg["centre_patch"])
    val_ds = PairDataset(dataset_path, "val", transform, limit=max_val, centre_patch=cfg["centre_patch"])
    info["n_train_used"], info["n_val_used"] = len(train_ds), len(val_ds)

    seed_everything(seed)
    hparams = network_hparams(cfg, len(info["channels"]))
    model = build_model(cfg["model"], **hparams)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=cfg["plateau_factor"],
                                                           patience=cfg["plateau_patience"])
    history, best_val, best_epoch, elapsed = [], math.inf, 0, 0.0
    best_state = copy.deepcopy(model.state_dict())
    best_error_maps = None
    start_epoch = 0
    subset = {"max_train": max_train, "max_val": max_val}
    if resume and os.path.exists(ckpt_path):
        ck = load_checkpoint(ckpt_path)
        st = ck["state"]
        _check_resume(ckpt_path, st, cfg, seed, info["fingerprint"], subset)
        model.load_state_dict(ck["model"])
        best_state = ck["best_model"]
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        history, best_val, best_epoch = st["history"], float(st["best_val_l1"]), int(st["best_epoch"])
        elapsed, start_epoch = float(st["elapsed_s"]), int(ck["epoch"])
        best_error_maps = ck["tensors"].get("best_error_maps")
    elif resume and progress:
        print(f"no checkpoint {ckpt_path}: starting a fresh run")

    def save_best_file(val_metrics):
        meta = build_metadata(info, transform, cfg, seed, history, best_epoch, val_metrics, dataset_path, elapsed)
        save_emulator(out_path, model_name=cfg["model"], hparams=hparams, state_dict=best_state, metadata=meta,
                      tensors={"error_maps": best_error_maps})

    n_train, bs = len(train_ds), cfg["batch_size"]
    n_batches = (n_train + bs - 1) // bs
    session_t0 = last_plot = time.perf_counter()
    for epoch in range(start_epoch + 1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        perm = epoch_permutation(n_train, seed, epoch)
        total = 0.0
        bar = _progress(n_batches, f"epoch {epoch}/{cfg['epochs']}", progress)
        for b in range(n_batches):
            idx = perm[b * bs:(b + 1) * bs]
            x, y = train_ds.batch(idx)
            loss = l1(with_patch(model(x), y, train_ds.patch_masks(idx)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            bar.update(1)
            if b % 20 == 0:
                bar.set_postfix(train=f"{total / min((b + 1) * bs, n_train):.5f}")
        train_l1 = total / n_train
        acc = evaluate_model(model, val_ds, transform)
        val_l1 = acc.l1
        lr_now = optimizer.param_groups[0]["lr"]
        scheduler.step(val_l1)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        bar.set_postfix(train=f"{train_l1:.5f}", val=f"{val_l1:.5f}", lr=f"{lr_now:.2g}")
        if progress and bar.disable:  # no terminal: one log line per epoch instead of a bar
            print(f"epoch {epoch}/{cfg['epochs']}: train_l1 {train_l1:.6f} val_l1 {val_l1:.6f} lr {lr_now:.3g} "
                  f"{seconds:.1f} s", file=sys.stderr, flush=True)
        bar.close()
        history.append({"epoch": epoch, "train_l1": train_l1, "val_l1": val_l1, "lr": lr_now, "seconds": seconds})
        if val_l1 < best_val:
            best_val, best_epoch = val_l1, epoch
            best_state = copy.deepcopy(model.state_dict())
            best_error_maps = acc.error_maps()
            save_best_file({"val_l1": val_l1, "epoch": epoch})
        state = {"history": history, "best_val_l1": best_val, "best_epoch": best_epoch, "config": cfg,
                 "seed": int(seed), "data_fingerprint": info["fingerprint"], "elapsed_s": elapsed,
                 "hparams": hparams, "model_name": cfg["model"], **subset}
        save_checkpoint(ckpt_path, epoch=epoch, model=model.state_dict(), best_model=best_state,
                        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), state=state,
                        tensors={"best_error_maps": best_error_maps})
        write_log_csv(out_path + ".log.csv", history)
        write_text_atomic(out_path + ".log.json", json.dumps({"config": cfg, "seed": int(seed), "best_epoch": best_epoch,
                                                          "best_val_l1": best_val, "history": history}, indent=1))
        if time.perf_counter() - last_plot >= PLOT_EVERY_S:  # the curve is cheap but not free on tiny epochs
            plot_loss(out_path + ".loss.png", history, f"{cfg['model']} {os.path.basename(out_path)}")
            last_plot = time.perf_counter()
        if time_limit_s is not None and time.perf_counter() - session_t0 >= time_limit_s:
            if progress:
                print(f"time limit {time_limit_s:g} s reached after epoch {epoch}; continue with --resume")
            break

    # final validation metrics of the best weights (quantiles of physical errors)
    model.load_state_dict(best_state)
    acc = evaluate_model(model, val_ds, transform, quantiles=True)
    best_error_maps = acc.error_maps()
    val_metrics = dict(acc.summary(), epoch=best_epoch, n_parameters=n_parameters(model))
    save_best_file(val_metrics)
    if history:
        plot_loss(out_path + ".loss.png", history, f"{cfg['model']} {os.path.basename(out_path)}")
    train_ds.close()
    val_ds.close()
    return TrainResult(best_val, history, out_path, best_epoch, val_metrics, cfg)
