"""Would a learned variance head calibrate the emulator's errors? An upper bound: a small CNN, with no latency budget,
that sees everything the emulator knows per pixel, trained to predict the error scale on galaxies it never saw.

    python benchmarks/variance_head.py [--n-fit 2048] [--n-test 512] [--seed 41] [--epochs 15] [--loss gauss|logmse]

The head (5 convolutions, 32 channels, dilations 1-2-4-1, about 36,000 weights, run on the 80 x 80 HR grid: tens
of times the network's own cost, so it could not ship; it measures what a head could reach) takes per pixel the
emulated maps (log10 brightness relative to the peak, velocity over its amplitude, log10 dispersion and M/L), ln of
the distance from the centre, the central patch's mask, ln of the shipped model's sigma (relative to the galaxy's
mean) and the 18 normalised parameters as constant channels. It outputs a factor on the shipped sigma per pixel and
channel, trained on |residual| / shipped sigma of the bright pixels of the fit galaxies (seed), by a Gaussian
negative log-likelihood ("gauss", a variance head in the usual sense) or by least squares on ln|residual|
("logmse", robust to the tails, as benchmarks/calibration_shape.py fits its log-linear model). Then, as there, each
distance band and channel is rescaled by the shipped calibration's rule on the fit galaxies, and both models are
judged on the test galaxies (seed + 1) with calibration_shape's table. One thread, seeded; about 25 min on one core.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402
from calibration_shape import held_out_set, print_tables, rescale_by_band  # noqa: E402

from galsr.emulator import Emulator  # noqa: E402
from galsr.simulator.centre_patch import patch_origin  # noqa: E402

BATCH = 32
LEARNING_RATE = 2e-3


def head_inputs(emulator, params, sigma, dist):
    """(N, 28, n, n) float32 inputs of the head for parameter rows (N, 18), the shipped sigma and the distance from
    the centre [LR pixels] (both (N, 4, n, n) / (N, n, n))."""
    maps = emulator(params).astype(np.float64)
    n = len(params)
    b = np.log10(np.maximum(maps[:, 0], 1e-30))
    b = b - b.reshape(n, -1).max(1)[:, None, None]
    v = maps[:, 1] / (np.abs(maps[:, 1]).reshape(n, -1).max(1)[:, None, None] + 1e-9)
    s = np.log10(np.maximum(maps[:, 2], 1e-3)) - 2
    ml = np.log10(np.maximum(maps[:, 3], 1e-3))
    mask = np.zeros((n,) + maps.shape[2:])
    if emulator.centre_patch:
        for g, (i, j) in enumerate(patch_origin(params, emulator.hr_grid, emulator.centre_patch)):
            mask[g, int(i):int(i) + emulator.centre_patch, int(j):int(j) + emulator.centre_patch] = 1
    lo, hi = emulator.bounds[:, 0], emulator.bounds[:, 1]
    norm = (params - lo) / (hi - lo) - 0.5
    ls = np.log(sigma)
    ls = ls - ls.reshape(n, 4, -1).mean(2)[:, :, None, None]
    per_pixel = np.stack([b / 3, v, s, ml, np.log(dist + 0.05), mask], 1)
    constant = np.broadcast_to(norm[:, :, None, None], norm.shape + maps.shape[2:])
    return np.concatenate([per_pixel, ls, constant], 1).astype(np.float32)


class Head(torch.nn.Module):
    """ln of the factor on the shipped sigma (N, 4, n, n) from the inputs (N, c_in, n, n); starts at 0 (the shipped
    model)."""

    def __init__(self, c_in, width=32):
        super().__init__()
        layers, c = [], c_in
        for dilation in (1, 2, 4, 1):
            layers += [torch.nn.Conv2d(c, width, 3, padding=dilation, dilation=dilation), torch.nn.GELU()]
            c = width
        layers.append(torch.nn.Conv2d(width, 4, 1))
        torch.nn.init.zeros_(layers[-1].weight)
        torch.nn.init.zeros_(layers[-1].bias)
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def loss_terms(out, z, kind):
    """Per-pixel loss of the head's output ``out`` for |residual| / shipped sigma ``z``."""
    if kind == "gauss":
        return out + 0.5 * z ** 2 * torch.exp(-2 * out)
    return (torch.log(z.clamp_min(1e-6)) - out) ** 2


def train(x, z, bright, epochs, kind):
    """The trained head on inputs x, targets z (both tensors) and the bright mask (N, n, n)."""
    head = Head(x.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE)
    per_epoch = len(x) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LEARNING_RATE, total_steps=epochs * per_epoch)
    mask = bright[:, None].expand_as(z)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        t0, total = time.time(), 0.0
        perm = torch.randperm(len(x), generator=gen)
        for k in range(per_epoch):
            i = perm[k * BATCH:(k + 1) * BATCH]
            loss = loss_terms(head(x[i]), z[i], kind)[mask[i]].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"epoch {epoch}: loss {total / per_epoch:.4f} ({time.time() - t0:.0f} s)", flush=True)
    return head.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-fit", type=int, default=2048, help="galaxies the head is trained on")
    ap.add_argument("--n-test", type=int, default=512, help="galaxies it is judged on")
    ap.add_argument("--seed", type=int, default=41, help="their draws: seed and seed + 1 (not a training seed)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--loss", default="gauss", choices=("gauss", "logmse"))
    args = ap.parse_args()
    print(machine_line())
    torch.manual_seed(0)
    emu = Emulator.default(num_threads=1)
    fit, test = (held_out_set(emu, n, seed) for n, seed in ((args.n_fit, args.seed), (args.n_test, args.seed + 1)))
    for s in (fit, test):
        s["x"] = head_inputs(emu, s["params"], s["sigma"], s["dist"])
    head = train(torch.from_numpy(fit["x"]), torch.from_numpy((fit["res"] / fit["sigma"]).astype(np.float32)),
                 torch.from_numpy(fit["bright"]), args.epochs, args.loss)
    with torch.no_grad():
        for s in (fit, test):
            factor = np.concatenate([np.exp(head(torch.from_numpy(s["x"][i:i + 64])).numpy())
                                     for i in range(0, len(s["x"]), 64)])
            s["head"] = s["sigma"] * factor
    rescale_by_band(fit, test, "head")
    print_tables(args.n_test, args.seed + 1, test, (("shipped error model", "sigma"),
                                                    (f"learned head ({args.loss})", "head")))


if __name__ == "__main__":
    main()
