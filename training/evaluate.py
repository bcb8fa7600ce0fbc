"""Evaluation of emulators on a validation set, side by side with baselines (the report of docs/training.md).

For each model (the emulator, any baseline emulator files such as a trained FSRCNN, and plain bicubic up-sampling):
L1 on normalised maps, PSNR, per-channel median and 95th-percentile error in physical units (relative for
brightness, sigma and M/L, km/s for velocity), and the single-thread CPU latency at batch 1 and 64. All models are
scored in the emulator's normalised space. A figure LR / HR / SR / residual per channel (thesis Fig. 6.2) is drawn
for a few validation galaxies.
"""
import json
import os

import numpy as np
import torch

from galsr.simulator.fileio import save_figure, write_text_atomic
from galsr.training.data import PairDataset, dataset_info
from galsr.emulator.file_format import load_emulator
from galsr.training.metrics import evaluate_model, residual_units
from galsr.training.region_metrics import format_region_table, region_summaries
from galsr.emulator.architectures import build_model, inference_model, n_parameters
from galsr.emulator.latency import latency_ms, network_latency_ms
from galsr.emulator.transform import MapTransform

CHANNEL_TITLES = {"B": "log10 B [Lsun/kpc2]", "v": "v [km/s]", "sigma": "sigma [km/s]", "ML": "M/L [Msun/Lsun]"}


def _network_latency_ms(model, n_channels, n_lr, batch, threads=1, repeats=50):
    """Latency [ms] of the inference copy of ``model`` on a (batch, C, n, n) input."""
    return network_latency_ms(inference_model(model, n_lr), (batch, n_channels, n_lr, n_lr), threads=threads,
                              repeats=repeats if batch == 1 else max(3, repeats // 10))


def emulator_latency_ms(model_path, batch, threads=1, repeats=50, seed=0):
    """Single-``threads`` latency [ms] of a whole emulator call (LR simulation + network) at ``batch`` galaxies."""
    from galsr.emulator import Emulator
    from galsr.simulator import ParameterSpace

    import numba

    previous, previous_numba = torch.get_num_threads(), numba.get_num_threads()
    try:
        emu = Emulator.load(model_path, num_threads=threads)
        params = ParameterSpace(bounds=emu.bounds, redshift=emu.redshift).sample_lhs(batch, seed=seed)
        arg = params[0] if batch == 1 else params
        return latency_ms(lambda: emu(arg), repeats=repeats if batch == 1 else max(3, repeats // 10),
                          warmup=min(5, repeats))
    finally:
        torch.set_num_threads(previous)
        numba.set_num_threads(previous_numba)


def _check_grids(meta, info, model_path, dataset_path):
    for key in ("lr_grid", "hr_grid"):
        a, b = meta[key], info[key]
        if a is None or b is None:
            continue
        if a["npix"] != b["npix"] or not np.isclose(a["pixel_kpc"], b["pixel_kpc"], rtol=1e-6):
            raise ValueError(f"{model_path}: {key} ({a['npix']} px of {a['pixel_kpc']:.4g} kpc) differs from the "
                             f"dataset {dataset_path}'s ({b['npix']} px of {b['pixel_kpc']:.4g} kpc)")


def evaluate(model_path, dataset_path, *, baselines=(), max_val=None, out_dir=None, n_examples=3, latency=True,
             threads=1, seed=0, latency_repeats=50):
    """Score an emulator and baselines on the validation split of a dataset.

    Args:
        model_path: str, emulator file (``*.galsr``), reported under its model name (e.g. "isrcnn").
        dataset_path: str, complete galsr dataset on the same grids (its validation split is used).
        baselines: iterable of emulator file paths (e.g. a trained FSRCNN); bicubic is always added.
        max_val: int or None, use the first rows of the validation split only.
        out_dir: str or None, where to write metrics.json, table.md and examples.png.
        n_examples: int, galaxies in the figure (0: no figure).
        latency: bool, measure single-thread network and emulator latency at batch 1 and 64.
        threads: int, torch threads for the latency measurements.
        seed: int, picks the example galaxies.
        latency_repeats: int, timed batch-1 calls (batch 64: a tenth of it, at least 3).

    Returns:
        dict {"models": {label: metrics}, "order": [labels], "n_val": int, "dataset": str, "files": {...},
        "ratios": {label: L1 / L1 of the emulator}}; metrics as training.metrics.ErrorAccumulator.summary()
        plus n_parameters and latency_ms {"network_b1", "network_b64", "emulator_b1", "emulator_b64"}.
    """
    if int(n_examples) < 0:
        raise ValueError(f"n_examples must be >= 0, got {n_examples}")
    main = load_emulator(model_path)
    info = dataset_info(dataset_path)
    _check_grids(main.metadata, info, model_path, dataset_path)
    tf = MapTransform.from_dict(main.metadata["transform"])
    val = PairDataset(dataset_path, "val", tf, limit=max_val)
    entries = [(main.model_name, main.build_model(), model_path)]
    for path in baselines:
        ef = load_emulator(path)
        _check_grids(ef.metadata, info, path, dataset_path)
        label = ef.model_name if ef.model_name not in [e[0] for e in entries] else os.path.basename(str(path))
        entries.append((label, _retarget(ef, tf), path))
    entries.append(("bicubic", build_model("bicubic", channels=tf.n_channels), None))

    n_lr = val.lr_shape[-1]
    results = {}
    for label, model, path in entries:
        m = evaluate_model(model, val, tf, quantiles=True).summary()
        m["n_parameters"] = n_parameters(model)
        if latency:
            r = latency_repeats
            lat = {"network_b1": _network_latency_ms(model, tf.n_channels, n_lr, 1, threads, r),
                   "network_b64": _network_latency_ms(model, tf.n_channels, n_lr, 64, threads, r)}
            if path is not None:
                lat["emulator_b1"] = emulator_latency_ms(path, 1, threads, r)
                lat["emulator_b64"] = emulator_latency_ms(path, 64, threads, r)
            m["latency_ms"] = lat
        results[label] = m
    main_label = entries[0][0]
    out = {"models": results, "order": [e[0] for e in entries], "n_val": len(val),
           "dataset": os.path.basename(os.fspath(dataset_path)), "model": os.path.basename(os.fspath(model_path)),
           "ratios": {k: v["l1"] / results[main_label]["l1"] for k, v in results.items()}, "files": {},
           "regions": evaluate_regions([(label, path) for label, _, path in entries if path is not None], val)}
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        out["files"]["metrics"] = write_text_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(out, indent=1))
        out["files"]["table"] = write_text_atomic(os.path.join(out_dir, "table.md"), format_table(out))
        if n_examples > 0:
            rows = np.random.default_rng(seed).choice(len(val), size=min(n_examples, len(val)), replace=False)
            out["files"]["figure"] = plot_examples(os.path.join(out_dir, "examples.png"), entries[0][1], val, tf,
                                                   sorted(rows.tolist()), main_label)
        write_text_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(out, indent=1))
    val.close()
    return out


def evaluate_regions(emulators, val, block=256):
    """Errors by distance from the galaxy centre of whole emulators and of bicubic up-sampling on the galaxies of
    ``val`` (PairDataset): galsr.training.region_metrics.region_summaries for ``emulators`` [(label, emulator file
    path)]."""
    from galsr.emulator import Emulator
    from galsr.simulator.dataset_file import open_dataset_file

    with open_dataset_file(val.path) as f:
        params = f["params"][()][val.rows]
    emus = [(label, Emulator.load(path)) for label, path in emulators]
    return region_summaries(emus, params, lambda a, b: val.physical(np.arange(a, b), "hr"), block)


def _retarget(ef, tf):
    """A baseline's network, wrapped so that it sees/returns maps in the main emulator's normalisation."""
    model = ef.build_model()
    own = MapTransform.from_dict(ef.metadata["transform"])
    if own == tf:
        return model
    return _Renormalised(model, own, tf)


class _Renormalised(torch.nn.Module):
    """Wrap a network trained with transform ``own`` to take and return maps normalised with ``target``."""

    def __init__(self, model, own, target):
        super().__init__()
        self.model, self.own, self.target = model, own, target

    def forward(self, x):
        phys = self.target.inverse(x.double())
        y = self.model(self.own.forward(phys).float())
        return self.target.forward(self.own.inverse(y.double())).float()


def format_table(result):
    """Markdown table of an ``evaluate`` result."""
    order, models = result["order"], result["models"]
    chans = list(next(iter(models.values()))["median_error"])
    unit = lambda c: "km/s" if c == "v" else "%"  # noqa: E731
    fmt = lambda c, x: f"{x:.3g}" if c == "v" else f"{100 * x:.3g}"  # noqa: E731
    head = ["model", "params", "L1 (norm.)", "L1 / emulator", "PSNR [dB]"]
    head += [f"median {c} [{unit(c)}]" for c in chans] + [f"p95 {c} [{unit(c)}]" for c in chans]
    head += ["4-px pattern [% of var., worst map]"]
    has_lat = "latency_ms" in models[order[0]]
    if has_lat:
        head += ["net b1 [ms]", "net b64 [ms]", "emulator b1 [ms]", "emulator b64 [ms]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in order:
        m = models[label]
        row = [label, f"{m['n_parameters']:,}", f"{m['l1']:.3g}", f"{result['ratios'][label]:.2f}",
               f"{m['psnr_db']:.2f}"]
        row += [fmt(c, m["median_error"][c]) for c in chans] + [fmt(c, m["p95_error"][c]) for c in chans]
        periodic = m.get("periodic_fraction_median")
        row += [f"{100 * max(periodic.values()):.2g}" if periodic else "-"]
        if has_lat:
            lat = m.get("latency_ms", {})
            row += [f"{lat[k]:.3g}" if k in lat else "-" for k in ("network_b1", "network_b64", "emulator_b1",
                                                                     "emulator_b64")]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines) + f"\n\n{result['n_val']} validation galaxies of {result['dataset']}.\n"
    if result.get("regions"):
        text += ("\nBy distance from the galaxy centre (pixels brighter than 1e-3 of the peak; errors relative for "
                 "B, sigma, M/L, km/s for v; shares of pixels within 1 and 2 predicted sigma):\n\n"
                 + format_region_table(result["regions"]) + "\n")
    return text


def plot_examples(path, model, val, tf, rows, label="SR"):
    """Figure (one block of 4 x 4 panels per galaxy): LR, HR, SR and SR - HR (dex for B, relative for sigma and
    M/L, km/s for v) per channel, as the thesis's Figure 6.2. Written atomically; returns path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = val.batch(np.asarray(rows))
    with torch.inference_mode():
        sr = model.eval()(x)
    lr_p, hr_p, sr_p = (tf.inverse(t.double()) for t in (x, y, sr))
    chans = list(tf.channels)
    n = len(rows)
    fig, axes = plt.subplots(4 * n, 4, figsize=(10, 10 * n), squeeze=False)
    for g in range(n):
        res = residual_units(sr_p[g:g + 1].clone(), hr_p[g:g + 1], chans)[0]
        for c, name in enumerate(chans):
            ax_row = axes[4 * g + c]
            panels = [lr_p[g, c], hr_p[g, c], sr_p[g, c]]
            if name == "B":
                panels = [torch.log10(p) for p in panels]
                resid, rlab = res[c], "SR - HR [dex]"
            elif name == "v":
                resid, rlab = res[c], "SR - HR [km/s]"
            else:
                resid, rlab = res[c] / hr_p[g, c].abs().clamp_min(1e-30), "SR / HR - 1"
            lo = min(float(p.min()) for p in panels)
            hi = max(float(p.max()) for p in panels)
            cmap = "RdBu_r" if name == "v" else "viridis"
            for k, (p, t) in enumerate(zip(panels, ("LR", "HR", label))):
                im = ax_row[k].imshow(p.numpy(), origin="lower", cmap=cmap, vmin=lo, vmax=hi)
                ax_row[k].set_title(f"{t} {CHANNEL_TITLES.get(name, name)}", fontsize=7)
            r = float(resid.abs().max()) or 1.0
            im2 = ax_row[3].imshow(resid.numpy(), origin="lower", cmap="RdBu_r", vmin=-r, vmax=r)
            ax_row[3].set_title(f"{rlab} (galaxy {rows[g]})", fontsize=7)
            fig.colorbar(im, ax=ax_row[2], fraction=0.046)
            fig.colorbar(im2, ax=ax_row[3], fraction=0.046)
            for ax in ax_row:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)
