"""The two numbers that decide whether the emulator is worth using, measured side by side in one run:
its speed-up over the converged HR simulation it replaces (batch 1, one CPU thread: what a dynesty worker pays per
likelihood call) and how close its maps are to that simulation's."""
import os
import platform

import numpy as np
import torch

from galsr.emulator.latency import latency_ms, paired_call_times
from galsr.simulator import ParameterSpace, simulate
from galsr.simulator.convergence import relative_changes


def benchmark_emulator(emulator, n_galaxies=64, seed=2026, repeats=3, threads=1):
    """Speed and accuracy of ``emulator`` against ``simulate(params, emulator.hr_grid)`` on random galaxies.

    Returns a dict: per-galaxy median latencies (ms) of the emulator (LR simulation, network, central patch and its
    per-galaxy error prediction: ``emulator.predict(p, return_error=True)``, what a fit calls) and of the converged
    HR simulation at batch 1 with ``threads`` threads (each model called back to back over the galaxies, the two
    alternating repeat by repeat), their ratio (and the median of per-galaxy ratios), the network's share of the
    emulator's time, the emulator's latency per galaxy at batch 64 (median of ``repeats`` calls), and per map the
    median
    and 95th-percentile error of the emulated maps (relative for brightness, dispersion and M/L; for the velocity
    relative to the local rms speed sqrt(v^2 + sigma^2), and in km/s).
    """
    if int(n_galaxies) < 2:
        raise ValueError(f"n_galaxies must be >= 2, got {n_galaxies}")
    emulator.set_num_threads(threads)  # numba and torch
    space = ParameterSpace(bounds=np.asarray(emulator.bounds), redshift=emulator.redshift)
    params = space.sample_lhs(n_galaxies, seed=seed)
    times = paired_call_times([lambda p: emulator.predict(p, return_error=True),
                               lambda p: simulate(p, emulator.hr_grid, emulator.redshift)], list(params), repeats)
    t_emu, t_hr = np.median(times, axis=1)
    x = torch.from_numpy(emulator.transform.forward(emulator.simulate_lr(params[:1])).astype(np.float32))
    with torch.inference_mode():
        t_net = latency_ms(lambda: emulator._fast(x), repeats=100, warmup=5) / 1e3
    batch = params[: min(64, len(params))]
    t_batch = latency_ms(lambda: emulator(batch), repeats=repeats, warmup=1) / 1e3 / len(batch)
    emulated = emulator(params)
    truth = simulate(params, emulator.hr_grid, emulator.redshift)
    rel = relative_changes(truth, emulated)
    dv = np.abs(emulated[:, 1] - truth[:, 1])
    names = ("B", "v", "sigma", "ML")
    errors = {name: {"median": float(np.median(rel[:, c])), "p95": float(np.percentile(rel[:, c], 95))}
              for c, name in enumerate(names)}
    errors["v_kms"] = {"median": float(np.median(dv)), "p95": float(np.percentile(dv, 95))}
    return {
        "n_galaxies": int(n_galaxies), "seed": int(seed), "threads": int(threads), "cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "emulator_ms": t_emu * 1e3, "hr_simulation_ms": t_hr * 1e3, "speedup": t_hr / t_emu,
        "network_ms": t_net * 1e3, "network_share": t_net / t_emu,
        "centre_patch": emulator.centre_patch, "error_model": emulator.error_model.kind,
        "speedup_median_of_pairs": float(np.median(times[1] / times[0])),  # same galaxy, same repeat
        "emulator_batch64_ms_per_galaxy": t_batch * 1e3, "errors": errors,
        "median_error_worst_map": max(errors[n]["median"] for n in names),
    }


def format_report(r):
    """Human-readable lines of :func:`benchmark_emulator`'s result."""
    lines = [
        f"{r['n_galaxies']} random galaxies (seed {r['seed']}), {r['threads']} thread(s), {r['cores']} cores",
        f"  converged HR simulation : {r['hr_simulation_ms']:8.3f} ms per galaxy (batch 1)",
        f"  emulator with errors    : {r['emulator_ms']:8.3f} ms per galaxy (batch 1), "
        f"{r['emulator_batch64_ms_per_galaxy']:.3f} ms at batch 64 (LR simulation, network"
        f"{', central patch %d x %d' % (r['centre_patch'], r['centre_patch']) if r['centre_patch'] else ''}, "
        f"{r['error_model']} error model)",
        f"  of which the network    : {r['network_ms']:8.3f} ms ({100 * r['network_share']:.0f} %)",
        f"  speed-up                : {r['speedup']:8.1f} x (median of paired ratios "
        f"{r['speedup_median_of_pairs']:.1f} x)",
        "  emulator error vs converged HR (median / 95th percentile):",
    ]
    e = r["errors"]
    for name, label in (("B", "brightness (relative)"), ("v", "velocity (rel. to rms speed)"),
                        ("sigma", "dispersion (relative)"), ("ML", "M/L (relative)")):
        lines.append(f"    {label:<30} {100 * e[name]['median']:7.3f} % / {100 * e[name]['p95']:7.3f} %")
    lines.append(f"    {'velocity (km/s)':<30} {e['v_kms']['median']:7.3f}   / {e['v_kms']['p95']:7.3f}")
    return "\n".join(lines)
