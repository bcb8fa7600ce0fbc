"""Training the emulator's centre head (galsr.emulator.centre_head) on top of a trained network.

The network's weights stay as they are; its outputs over the dataset are computed once and only the crops around
each galaxy's centre are kept (with the HR targets and the head's input features), so an epoch of the head costs
seconds. Loss per crop pixel, in normalised map units: |corrected - target| weighted per channel by the network's
own mean error (every map counts alike) and towards the centre (``loss_weights``), plus a Gaussian
negative log-likelihood of the remaining residual under the head's predicted sigma, with the residual and the
head's hidden features detached so that the error prediction never pulls the correction (Seitzer et al. 2022
train the mean first for this reason).
The epoch with the lowest weighted validation L1 over the crops is kept; the run is seeded and stops at ``epochs`` or after
``time_limit_s``.
"""
import copy
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from galsr.emulator.architectures import inference_model
from galsr.emulator.centre_head import R_COL, TAPER_COL, CentreHead, brightness_norm
from galsr.emulator.file_format import load_emulator, save_emulator
from galsr.emulator.transform import MapTransform
from galsr.simulator import Grid
from galsr.simulator.dataset_file import open_dataset_file
from galsr.training.data import PairDataset

#: The head's defaults: a 20 x 20 HR-pixel crop (5 LR pixels) and a 2-layer MLP of width 32.
HEAD_DEFAULTS = {"crop": 20, "hidden": 32, "layers": 2}
TRAIN_DEFAULTS = {"lr": 5e-4, "batch_size": 128, "nll_weight": 0.1, "plateau_patience": 5, "centre_weight": 4.0}


@dataclass
class CropData:
    """What the head trains on, per galaxy: network output and target crops (N, C, crop, crop), pixel and galaxy
    features and crop origins."""

    patch: torch.Tensor
    target: torch.Tensor
    pix: torch.Tensor
    gal: torch.Tensor

    def __len__(self):
        return len(self.patch)


def crop_data(head, network, dataset, params, batch=256):
    """CropData of a PairDataset (normalised maps) for the frozen ``network`` (its inference copy)."""
    rows, cols, pix, gal = head.features(params)
    k = np.arange(head.crop)
    patches, targets = [], []
    with torch.inference_mode():
        for start in range(0, len(dataset), batch):
            idx = np.arange(start, min(start + batch, len(dataset)))
            x, y = dataset.batch(idx)
            out = network(x)
            r = rows[idx][:, None, None, None] + k[None, None, :, None]
            c = cols[idx][:, None, None, None] + k[None, None, None, :]
            n = np.arange(len(idx))[:, None, None, None]
            ch = np.arange(out.shape[1])[None, :, None, None]
            patches.append(out[n, ch, r, c].clone())
            targets.append(y[n, ch, r, c].clone())
    return CropData(torch.cat(patches), torch.cat(targets), torch.from_numpy(pix), torch.from_numpy(gal))


def loss_weights(data, centre_weight):
    """Per-pixel loss weights (N, C, crop, crop): each channel divided by the network's own mean error over the
    crops (so that every map counts alike, whatever its normalised range), times 1 + ``centre_weight``
    exp(-r^2 / 2) with r in LR pixels (the centre, where the network fails, counts more)."""
    per_channel = (data.target - data.patch).abs().mean(dim=(0, 2, 3)).clamp_min(1e-12)
    r = data.pix[..., R_COL]
    return (1.0 + centre_weight * torch.exp(-0.5 * r * r))[:, None] / per_channel[None, :, None, None]


def head_losses(head, data, idx, nll_weight, weights=None):
    """(weighted L1 of the corrected crop, Gaussian NLL of its residual) over galaxies ``idx`` (torch scalars);
    ``weights`` (N, C, crop, crop) from :func:`loss_weights`, None for the plain L1."""
    pix, gal, patch = data.pix[idx], data.gal[idx], data.patch[idx]
    o = head.mlp(pix, patch, gal)
    corrected = patch + o[:, : head.channels] * pix[..., TAPER_COL][:, None]
    resid = data.target[idx] - corrected
    log_sigma = o[:, head.channels:]
    nll = 0.5 * (resid.detach() ** 2 * torch.exp(-2.0 * log_sigma)) + log_sigma
    l1 = resid.abs() if weights is None else resid.abs() * weights[idx]
    return l1.mean(), nll_weight * nll.mean()


def train_centre_head(emulator_path, dataset_path, out_path, *, epochs=200, seed=0, time_limit_s=None,
                      head=None, training=None, max_train=None, max_val=None, progress=False, overwrite=False):
    """Train a centre head for the emulator in ``emulator_path`` on ``dataset_path`` (the dataset it was trained on:
    same grids and transform) and write the emulator with its head to ``out_path``.

    Args:
        head: dict overriding HEAD_DEFAULTS (crop, hidden, layers); training: dict overriding TRAIN_DEFAULTS.
        epochs: int, passes over the training galaxies; time_limit_s: float or None, stop after this many seconds.
    Returns:
        dict with best_epoch, best_val_l1, the network's own val L1 over the crops, epochs run, seconds.
    """
    if os.path.exists(out_path) and not overwrite:
        raise ValueError(f"{out_path} exists; allow overwriting it to replace it")
    hcfg = dict(HEAD_DEFAULTS, **(head or {}))
    tcfg = dict(TRAIN_DEFAULTS, **(training or {}))
    ef = load_emulator(emulator_path)
    tf = MapTransform.from_dict(ef.metadata["transform"])
    hr_grid, lr_grid = Grid.from_dict(ef.metadata["hr_grid"]), Grid.from_dict(ef.metadata["lr_grid"])
    torch.manual_seed(seed)
    model = CentreHead(tf.n_channels, hcfg["crop"], hcfg["hidden"], hcfg["layers"], hr_grid.centres,
                       lr_grid.centres, ef.metadata["bounds"], (hr_grid.psf_fwhm_pho_kpc, hr_grid.psf_fwhm_kin_kpc),
                       brightness_norm(ef.metadata["transform"]))
    network = inference_model(ef.build_model(), lr_grid.npix)
    sets = {}
    with open_dataset_file(dataset_path, hr_factor=4) as f:
        all_params = f["params"][()]
    for split, limit in (("train", max_train), ("val", max_val)):
        ds = PairDataset(dataset_path, split, tf, limit=limit)
        sets[split] = crop_data(model, network, ds, all_params[ds.rows])
        ds.close()
    train_set, val_set = sets["train"], sets["val"]
    w_train = loss_weights(train_set, float(tcfg["centre_weight"]))
    w_val = loss_weights(val_set, float(tcfg["centre_weight"]))
    with torch.no_grad():
        base_val = float(((val_set.target - val_set.patch).abs() * w_val).mean())
    opt = torch.optim.Adam(model.parameters(), lr=tcfg["lr"])
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=int(tcfg["plateau_patience"]))
    gen = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, t0, epoch = math.inf, 0, copy.deepcopy(model.state_dict()), time.time(), 0
    bs = int(tcfg["batch_size"])
    for epoch in range(1, int(epochs) + 1):
        model.train()
        for idx in torch.randperm(len(train_set), generator=gen).split(bs):
            l1, nll = head_losses(model, train_set, idx, tcfg["nll_weight"], w_train)
            opt.zero_grad()
            (l1 + nll).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(head_losses(model, val_set, torch.arange(len(val_set)), 0.0, w_val)[0])
        sched.step(val)
        if val < best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        if progress:
            print(f"epoch {epoch}: val L1 (crop) {val:.6f} (network alone {base_val:.6f}), best {best:.6f} "
                  f"at {best_epoch}, {time.time() - t0:.0f} s", flush=True)
        if time_limit_s is not None and time.time() - t0 >= time_limit_s:
            break
    model.load_state_dict(best_state)
    record = {"best_epoch": best_epoch, "best_val_l1_crop": best, "network_val_l1_crop": base_val,
              "epochs_run": epoch, "seconds": time.time() - t0, "seed": int(seed), "head": hcfg, "training": tcfg,
              "dataset": os.path.basename(os.fspath(dataset_path)), "n_train": len(train_set), "n_val": len(val_set)}
    meta = dict(ef.metadata, centre_head=dict(model.hparams, record=record))
    meta.pop("error_model", None)  # the maps changed: an earlier error calibration no longer applies
    tensors = dict(ef.tensors, **{f"centre_head.{k}": v for k, v in model.state_dict().items()})
    tensors.pop("error_model_table", None)
    save_emulator(out_path, model_name=ef.model_name, hparams=ef.hparams, state_dict=ef.state_dict, metadata=meta,
                  tensors=tensors)
    return record
