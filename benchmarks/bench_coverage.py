"""Coverage of the fit's intervals over mocks drawn from the prior: simulator only, emulator only, emulator + exact
finish (galsr.finish).

    python benchmarks/bench_coverage.py --out DIR [--mocks 50] [--arms emulator finish simulator] [--free six|all]
                                        [--workers 1] [--seed 0] [--snr 30] [--emulator FILE] [--report]

Mock k has parameters drawn from the fit's prior (galsr.prior.Prior.sample with seed 10000 x seed + k: uniform in
each parametrisation, inclination isotropic, physical cuts applied) and the
default MaNGA-like noise of galsr.noise at S/N ``--snr`` (noise seed = seed + k) on the emulator's grid. ``--free six``
fits the bulge, disc and disc-2 masses, the disc-2 radius, the orientation and the inclination, the other 12 fixed at
the truth; ``--free all`` fits all 18. Sampler settings: galsr.fitting.DEFAULTS, the same for every arm. The
"emulator" and "finish" arms share one emulator fit per mock (the finish arm's wall time includes it). The
"laplace" arm is a cheap check of the exact likelihood itself (no sampler): the simulator's best fit by bounded least
squares started at the truth (galsr.laplace.exact_laplace) and the Gaussian of its Gauss-Newton covariance; where
the posterior is close to Gaussian its coverage is the exact posterior's, at a few seconds per mock. It also records
chi^2(truth) - chi^2(best fit) and its chi^2 p-value with ndim degrees of freedom, which the per-mock table shows:
a mock whose noise puts the truth far from the exact optimum is missed by every honest posterior, and tells nothing
about the sampler or the emulator.

Per arm and free parameter: the share of truths inside the 68 % and 95 % intervals (central, from the weighted
posterior) with binomial errors, SBC ranks of the truth among 100 posterior draws (Talts et al. 2018; uniform when
the posterior is calibrated) as one figure, and wall time per fit. One JSON per (mock, arm) in DIR/<free>/, written
atomically, so a rerun skips what is done; each sampler run keeps its signed checkpoint in
DIR/<free>/checkpoints/ (galsr.fit_checkpoint), so a killed fit continues where it stopped and a finish can be rerun
from a finished emulator fit in minutes (delete a mock's finish record, run again). ``--report`` only aggregates
(DIR/<free>/coverage.md, coverage.json, coverage.png, sbc_ranks.png).
"""
import argparse
import glob
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.fit_checkpoint import CHECKPOINT  # noqa: E402
from galsr.simulator import PARAM_NAMES, ParameterSpace  # noqa: E402
from galsr.simulator.fileio import save_figure, write_json_atomic, write_text_atomic  # noqa: E402

SIX = ("log10_bulge_mass", "log10_disc1_mass", "log10_disc2_mass", "log10_disc2_radius", "orientation",
       "inclination")
ARMS = ("emulator", "finish", "simulator", "laplace")
N_RANK = 100  # posterior draws per SBC rank


def mock_truth(k, seed):
    """The true parameters (18,) of mock ``k``: a draw from the fit's own prior (galsr.prior.Prior, inclination
    isotropic, physical cuts), as simulation-based calibration requires."""
    from galsr.prior import Prior

    return Prior(ParameterSpace()).sample(1, seed=10000 * seed + k)[0]


def record(result, truth, free, wall, seed):
    """The JSON record of one fit: per free parameter the 2.5/16/50/84/97.5 % quantiles, the truth and its SBC rank;
    wall time [s], calls, evidence, the finish's numbers."""
    from dynesty.utils import quantile

    rng = np.random.default_rng(seed)
    draws = result.samples[rng.choice(len(result.weights), size=N_RANK, p=result.weights)]
    params = {}
    for name in free:
        j = PARAM_NAMES.index(name)
        q = quantile(result.samples[:, j], [0.025, 0.16, 0.5, 0.84, 0.975], weights=result.weights)
        params[name] = {"q": [float(v) for v in q], "truth": float(truth[j]),
                        "rank": int(np.sum(draws[:, j] < truth[j]))}
    s = result.summary
    return {"parameters": params, "wall_time_s": wall, "n_likelihood_calls": s["n_likelihood_calls"],
            "logz": s["logz"], "finish": s.get("finish"), "posterior": s.get("posterior"),
            "settings": {k: v for k, v in result.settings.items()}}


def laplace_record(galaxy, truth, fixed, seed):
    """The "laplace" arm's record: Gaussian quantiles and SBC rank from the exact best fit and its Gauss-Newton
    covariance (galsr.laplace.exact_laplace, started at the truth)."""
    from scipy.stats import chi2, norm

    from galsr.forward_models import SimulatorForward
    from galsr.laplace import ExactResiduals, exact_laplace
    from galsr.likelihood import FitData
    from galsr.prior import Prior

    t0 = time.time()
    prior = Prior(ParameterSpace(redshift=galaxy.redshift), fixed=fixed)
    residuals = ExactResiduals(prior, FitData(galaxy), SimulatorForward(galaxy.grid, galaxy.redshift))
    t = truth[prior.free_index]
    theta, cov, n = exact_laplace(residuals, t, 1e-3 * (prior.hi - prior.lo), prior.lo, prior.hi)
    # how far the data themselves put the truth from the exact optimum: chi^2(truth) - chi^2(best fit), which is
    # chi^2 with ndim degrees of freedom for Gaussian noise, so a mock whose every posterior misses the truth can be
    # told from a sampler that missed it (a better optimum elsewhere only makes the p-value smaller)
    delta = float(np.sum(residuals(t) ** 2) - np.sum(residuals(theta) ** 2))
    sd = np.sqrt(np.diag(cov))
    z = norm.ppf([0.025, 0.16, 0.5, 0.84, 0.975])
    draws = np.random.default_rng(seed).multivariate_normal(theta, cov, size=N_RANK)
    params = {name: {"q": [float(v) for v in theta[j] + z * sd[j]], "truth": float(t[j]),
                     "rank": int(np.sum(draws[:, j] < t[j]))}
              for j, name in enumerate(prior.free_names)}
    return {"parameters": params, "wall_time_s": time.time() - t0, "n_likelihood_calls": n, "logz": None,
            "finish": None, "posterior": "Laplace approximation of the exact likelihood at its best fit",
            "truth_delta_chi2": delta, "truth_p": float(chi2.sf(max(delta, 0.0), len(theta)))}


def mock_galaxy(k, free, seed, snr):
    """Mock ``k``: (truth (18,), its galsr.galaxy.Galaxy with the default noise at S/N ``snr``, {name: value} of the
    parameters not in ``free``, fixed at the truth)."""
    from galsr.mock import make_mock

    truth = mock_truth(k, seed)
    fixed = {n: float(truth[i]) for i, n in enumerate(PARAM_NAMES) if n not in free}
    return truth, make_mock(truth, seed=seed + k, snr=snr), fixed


def sampled(out, k, galaxy, forward, workers, fixed, seed, **more):
    """Mock ``k``'s fit with ``forward``, continued from its checkpoint in ``out``/checkpoints when there is one (a
    finished fit returns at once): (galsr.fitting.FitResult, its wall time over all sessions [s])."""
    from galsr.fitting import fit

    ckpt = os.path.join(out, "checkpoints", f"mock{k:03d}_{forward}")
    with warnings.catch_warnings():  # dynesty warns that resuming a finished run does nothing: expected here
        warnings.filterwarnings("ignore", message="You are resuming a finished")
        res = fit(galaxy, forward=forward, checkpoint_dir=ckpt, checkpoint_every=60.0,
                  resume=os.path.exists(os.path.join(ckpt, CHECKPOINT)), workers=workers, fixed=fixed,
                  seed=seed + k, **more)
    return res, res.run["wall_time_s"]


def run_mock(k, arms, free, args, out):
    """Fit mock ``k`` with the arms not done yet; writes one JSON per arm."""
    from galsr.finish import finish_fit

    todo = [a for a in arms if not os.path.exists(os.path.join(out, f"mock{k:03d}_{a}.json"))]
    if not todo:
        return
    truth, galaxy, fixed = mock_galaxy(k, free, args.seed, args.snr)

    if "emulator" in todo or "finish" in todo:
        emu, t_emu = sampled(out, k, galaxy, "emulator", args.workers, fixed, args.seed, emulator=args.emulator)
        if "emulator" in todo:
            write_json_atomic(os.path.join(out, f"mock{k:03d}_emulator.json"),
                              record(emu, truth, free, t_emu, args.seed + k))
            print(f"mock {k} emulator: {t_emu:.0f} s", flush=True)
        if "finish" in todo:
            t0 = time.time()
            done = finish_fit(emu, workers=args.workers, seed=args.seed + k)
            t_fin = t_emu + time.time() - t0
            write_json_atomic(os.path.join(out, f"mock{k:03d}_finish.json"),
                              record(done, truth, free, t_fin, args.seed + k))
            f = done.summary["finish"]
            print(f"mock {k} finish: {t_fin:.0f} s, {f['method']}, ESS {f['ess']:.0f}, {f['n_exact']} exact",
                  flush=True)
    if "simulator" in todo:
        sim, wall = sampled(out, k, galaxy, "simulator", args.workers, fixed, args.seed)
        write_json_atomic(os.path.join(out, f"mock{k:03d}_simulator.json"),
                          record(sim, truth, free, wall, args.seed + k))
        print(f"mock {k} simulator: {wall:.0f} s", flush=True)
    if "laplace" in todo:
        write_json_atomic(os.path.join(out, f"mock{k:03d}_laplace.json"),
                          laplace_record(galaxy, truth, fixed, args.seed + k))


def inside(entry, level):
    """Whether a record's parameter entry has its truth inside the central ``level`` (68 or 95) % interval of its
    quantiles (2.5, 16, 50, 84, 97.5 %)."""
    lo, hi = (1, 3) if level == 68 else (0, 4)
    return entry["q"][lo] <= entry["truth"] <= entry["q"][hi]


def _share(hits):
    """(share of True, its binomial 1-sigma error with the rule-of-succession estimate (k+1)/(n+2), non-zero at 0
    and 1)."""
    n = len(hits)
    if not n:
        return float("nan"), float("nan")
    k = float(np.sum(hits))
    pt = (k + 1) / (n + 2)
    return k / n, float(np.sqrt(pt * (1 - pt) / n))


def pooled(records, level, draws=4000, seed=0):
    """The share of all free parameters' truths inside the ``level`` (68 or 95) % intervals over ``records`` (one
    per mock), and its 1-sigma error by resampling whole mocks (float, float). A mock's parameters share one noise
    draw and one posterior, so its misses come together (an offset along a ridge moves several parameters at once):
    the binomial error of the pooled count, which treats every parameter as an independent trial, is too small.
    Seeded: the same records give the same error."""
    hits = np.array([[inside(x, level) for x in r["parameters"].values()] for r in records], dtype=float)
    if hits.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boot = hits[rng.integers(0, len(hits), size=(draws, len(hits)))].mean(axis=(1, 2))
    return float(hits.mean()), float(boot.std())


def report(out, free):
    """Aggregate the JSON records in ``out``: coverage table (markdown), coverage.json, SBC rank figure."""
    rows = ["| arm | mocks | parameter | in 68 % | in 95 % | wall time per fit [s] (median) |",
            "|---|---|---|---|---|---|"]
    summary, ranks = {}, {}
    for arm in ARMS:
        recs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"mock*_{arm}.json")))]
        if not recs:
            continue
        wall = float(np.median([r["wall_time_s"] for r in recs]))
        summary[arm] = {"mocks": len(recs), "wall_time_s_median": wall, "parameters": {}}
        if arm == "finish":
            summary[arm]["ess_median"] = float(np.median([r["finish"]["ess"] for r in recs]))
            summary[arm]["fallback_runs"] = int(sum(r["finish"]["method"] != "reweight" for r in recs))
            summary[arm]["untrusted_runs"] = int(sum(not r["finish"]["trusted"] for r in recs))
            summary[arm]["smc_runs"] = int(sum(r["finish"]["method"].endswith("smc") for r in recs))
        (p68, e68), (p95, e95) = pooled(recs, 68), pooled(recs, 95)
        summary[arm]["pooled"] = {"in68": p68, "in68_err": e68, "in95": p95, "in95_err": e95}
        ranks[arm] = {}
        for name in free:
            e = [r["parameters"][name] for r in recs]
            in68, in95 = [inside(x, 68) for x in e], [inside(x, 95) for x in e]
            (p68, e68), (p95, e95) = _share(in68), _share(in95)
            summary[arm]["parameters"][name] = {"in68": p68, "in68_err": e68, "in95": p95, "in95_err": e95}
            ranks[arm][name] = [x["rank"] for x in e]
            rows.append(f"| {arm} | {len(recs)} | {name} | {100 * p68:.0f} +- {100 * e68:.0f} % | "
                        f"{100 * p95:.0f} +- {100 * e95:.0f} % | {wall:.0f} |")
    if not summary:
        return "no finished fits yet"
    text = "\n".join(rows) + "\n\nall free parameters pooled (1-sigma by resampling whole mocks):\n\n" + "\n".join(
        f"- {arm}, {v['mocks']} mocks: {100 * v['pooled']['in68']:.0f} +- {100 * v['pooled']['in68_err']:.0f} % in "
        f"the 68 % intervals, {100 * v['pooled']['in95']:.0f} +- {100 * v['pooled']['in95_err']:.0f} % in the 95 % "
        "ones" for arm, v in summary.items())
    paired = [(sim["wall_time_s"], fin["wall_time_s"]) for sim, fin in _pairs(out, "finish", "simulator")]
    if paired:
        ratio = [sim / fin for sim, fin in paired]
        summary["speed_up_end_to_end"] = {"mocks": len(paired), "median": float(np.median(ratio)),
                                          "min": float(np.min(ratio)), "max": float(np.max(ratio))}
        text += (f"\n\nend-to-end speed-up, simulator-only wall time / (emulator fit + finish) on the same mocks: "
                 f"median {np.median(ratio):.1f} x (range {np.min(ratio):.1f}-{np.max(ratio):.1f}, {len(paired)} mocks)")
    for arm, ref in (("finish", "simulator"), ("finish", "laplace"), ("emulator", "simulator")):
        agree = paired_agreement(out, free, arm, ref)
        if agree:
            summary.setdefault("paired", {})[f"{arm}_vs_{ref}"] = agree
            text += "\n\n" + agreement_table(agree, arm, ref)
    if "finish" in summary:
        text += "\n\n" + mock_table(out)
        f = summary["finish"]
        text += (f"\n\nfinish: median ESS {f['ess_median']:.0f}; exact fallback in {f['fallback_runs']} of "
                 f"{f['mocks']} mocks (tempered SMC in {f['smc_runs']}); not trusted in "
                 f"{f['untrusted_runs']}")
    write_text_atomic(os.path.join(out, "coverage.md"), text + "\n")
    write_json_atomic(os.path.join(out, "coverage.json"), summary)
    plot_ranks(os.path.join(out, "sbc_ranks.png"), ranks, free)
    plot_coverage(os.path.join(out, "coverage.png"), summary, free)
    return text


def mock_table(out, arm="finish"):
    """Markdown table, one row per mock of ``arm``: truths inside the 68 % and 95 % intervals, the largest |pull|
    (truth - median in 68 % half-widths) and its parameter, and the finish's method, simulations, ESS, the SMC's
    ln L gap to the exact optimum, trust and wall time; and, where the mock has a laplace record, where the data
    put the truth: chi^2(truth) - chi^2(exact best fit) and its chi^2 p-value (small: every posterior of these data
    misses the truth, a noise fluctuation, not a sampler failure)."""
    rows = [f"per mock ({arm}):", "", "| mock | in 68 % | in 95 % | max pull | method | simulations | ESS | "
            "SMC ln L gap (at equilibrium) | trusted | wall time [min] | truth: delta chi^2 (p) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(glob.glob(os.path.join(out, f"mock*_{arm}.json"))):
        r = json.load(open(f))
        e = r["parameters"]
        pulls = {n: (x["truth"] - x["q"][2]) / max((x["q"][3] - x["q"][1]) / 2, 1e-300) for n, x in e.items()}
        worst = max(pulls, key=lambda n: abs(pulls[n]))
        in68, in95 = (sum(inside(x, level) for x in e.values()) for level in (68, 95))
        fin = r.get("finish") or {}
        smc = fin.get("smc") or {}
        gap = (f"{smc['lnl_gap_median']:.1f} ({smc['lnl_gap_gaussian']:.1f})" if "lnl_gap_median" in smc else "-")
        ess = fin.get("ess")
        lap_path = f.replace(f"_{arm}.json", "_laplace.json")
        lap = json.load(open(lap_path)) if os.path.exists(lap_path) else {}
        data = (f"{lap['truth_delta_chi2']:.1f} ({lap['truth_p']:.2g})" if "truth_delta_chi2" in lap else "-")
        rows.append(f"| {os.path.basename(f)[4:7]} | {in68}/{len(e)} | {in95}/{len(e)} | {pulls[worst]:+.1f} "
                    f"({worst}) | {fin.get('method', '-')} | {fin.get('n_exact', '-')} | "
                    f"{'-' if ess is None else f'{ess:.0f}'} | {gap} | {fin.get('trusted', '-')} | "
                    f"{r['wall_time_s'] / 60:.1f} | {data} |")
    return "\n".join(rows)


def _pairs(out, arm, ref):
    """[(record of ``ref``, record of ``arm``)] for every mock in ``out`` that both arms finished."""
    return [(json.load(open(f)), json.load(open(f.replace(f"_{ref}.json", f"_{arm}.json"))))
            for f in sorted(glob.glob(os.path.join(out, f"mock*_{ref}.json")))
            if os.path.exists(f.replace(f"_{ref}.json", f"_{arm}.json"))]


def paired_agreement(out, free, arm, ref):
    """Per free parameter, ``arm`` against ``ref`` on the mocks both finished: the shift of the posterior median in
    units of the reference's 68 % half-width, and the ratio of the 68 % widths (medians and 90th percentile of
    |shift| over mocks). Far more sensitive than comparing two coverage fractions: each mock is its own control."""
    pairs = _pairs(out, arm, ref)
    if not pairs:
        return {}
    agree = {"mocks": len(pairs), "parameters": {}}
    for name in free:
        q_ref = np.array([r["parameters"][name]["q"] for r, _ in pairs])
        q_arm = np.array([a["parameters"][name]["q"] for _, a in pairs])
        half = (q_ref[:, 3] - q_ref[:, 1]) / 2
        shift = np.abs(q_arm[:, 2] - q_ref[:, 2]) / half
        ratio = (q_arm[:, 3] - q_arm[:, 1]) / (2 * half)
        agree["parameters"][name] = {"shift_median": float(np.median(shift)),
                                     "shift_p90": float(np.percentile(shift, 90)),
                                     "width_ratio_median": float(np.median(ratio))}
    return agree


def agreement_table(agree, arm, ref):
    """Markdown table of :func:`paired_agreement`."""
    rows = [f"{arm} against {ref} on the same {agree['mocks']} mocks (|shift of the median| in {ref} 68 % "
            "half-widths; 68 % width ratio):", "",
            "| parameter | median shift | p90 shift | width ratio (median) |", "|---|---|---|---|"]
    for name, a in agree["parameters"].items():
        rows.append(f"| {name} | {a['shift_median']:.2f} | {a['shift_p90']:.2f} | {a['width_ratio_median']:.2f} |")
    return "\n".join(rows)


def plot_coverage(path, summary, free):
    """Share of truths inside the 68 % and 95 % intervals per free parameter and pooled, one marker per arm with its
    1-sigma error (binomial per parameter, whole-mock resampling pooled), the nominal level and the issue's target
    band (68 +- 10 %, 95 +- 5 %) shaded: the table of coverage.md as one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in ARMS if a in summary]
    rows = ["pooled"] + list(free)
    fig, axes = plt.subplots(1, 2, figsize=(9, 1.2 + 0.28 * len(rows)), sharey=True, constrained_layout=True)
    y = np.arange(len(rows))[::-1].astype(float)
    for ax, level, band in ((axes[0], 68, 10), (axes[1], 95, 5)):
        ax.axvspan(level - band, level + band, color="0.9", zorder=0)
        ax.axvline(level, color="0.5", lw=0.8, zorder=1)
        for a, arm in enumerate(arms):
            v = summary[arm]
            entries = [v["pooled"]] + [v["parameters"][name] for name in free]
            share = 100 * np.array([e[f"in{level}"] for e in entries])
            err = 100 * np.array([e[f"in{level}_err"] for e in entries])
            dy = 0.6 * (a - (len(arms) - 1) / 2) / max(len(arms), 1)
            ax.errorbar(share, y + dy, xerr=err, fmt="o", ms=3.5, lw=0.9, color=f"C{ARMS.index(arm)}",
                        label=f"{arm} ({v['mocks']} mocks)")
        ax.axhline(y[0] - 0.5, color="0.6", lw=0.6)
        ax.set_xlim(0, 102)
        ax.set_xlabel(f"truths inside the {level} % interval [%]")
    axes[0].set_yticks(y, rows, fontsize=8)
    # below the panels: inside, it hides the lowest points
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncol=len(arms))
    fig.suptitle(f"Coverage per parameter ({len(free)} free; shaded: the target band)", fontsize=9)
    save_figure(fig, path, dpi=110)


def plot_ranks(path, ranks, free):
    """SBC rank histograms: one row per arm, one column per free parameter, 10 bins, the uniform band (+-1 sigma)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(ranks)
    fig, axes = plt.subplots(len(arms), len(free), figsize=(1.9 * len(free), 1.7 * len(arms)), squeeze=False,
                             constrained_layout=True)
    bins = np.linspace(0, N_RANK + 1, 11)
    for a, arm in enumerate(arms):
        for j, name in enumerate(free):
            ax = axes[a, j]
            r = ranks[arm][name]
            n = len(r)
            ax.hist(r, bins=bins, color="tab:blue", alpha=0.8)
            mean = n / 10
            ax.axhspan(mean - np.sqrt(mean * 0.9), mean + np.sqrt(mean * 0.9), color="0.8", zorder=0)
            ax.set_yticks([])
            ax.set_xticks([0, 50, 100])
            ax.tick_params(labelsize=6)
            if a == 0:
                ax.set_title(name, fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{arm} ({n})", fontsize=7)
    fig.suptitle("SBC rank of the truth among 100 posterior draws (uniform = calibrated)", fontsize=8)
    save_figure(fig, path, dpi=90)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results folder (one JSON per mock and arm)")
    ap.add_argument("--mocks", type=int, default=50)
    ap.add_argument("--first", type=int, default=0, help="index of the first mock")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--free", choices=("six", "all"), default="six")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--report", action="store_true", help="only aggregate the finished fits")
    ap.add_argument("--emulator", help="emulator file (default: the shipped one)")
    args = ap.parse_args()
    free = SIX if args.free == "six" else PARAM_NAMES
    out = os.path.join(args.out, args.free)
    os.makedirs(out, exist_ok=True)
    if not args.report:
        print(machine_line(), flush=True)
        for k in range(args.first, args.first + args.mocks):
            run_mock(k, args.arms, free, args, out)
            print(report(out, free).splitlines()[-1], flush=True)
    print(report(out, free))


if __name__ == "__main__":
    main()
