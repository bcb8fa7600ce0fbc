"""Whether an 18-free finish's SMC particles sit at the exact posterior, or only where its moves could take them: the
finish of a coverage mock, its particles moved on at the exact posterior for more rounds, and a second SMC run
bridged from the other reference, with its own further rounds. Particles that agree from two starts, and do not drift
when moved on, are at the exact posterior as far as random-walk moves can tell; a truth they miss is then the
posterior's miss (its tail), not the finish's.

    python benchmarks/smc_agreement.py --out DIR --mock K [--rounds 2] [--workers 1] [--seed 0] [--snr 30]

DIR is a bench_coverage.py results folder whose DIR/all/checkpoints/ holds mock K's finished emulator fit (run
``bench_coverage.py --out DIR --free all --arms emulator --first K --mocks 1`` first). Stages:

- ``finish``: galsr.finish.finish_fit as the coverage benchmark calls it (same seed, same particles);
- ``finish+moves N``: those particles moved on at beta = 1 (resample-move with the finish's own moves and stopping
  rule, a new seed per round);
- ``other start``: the SMC bridged from the reference the finish did not choose: the exact importance sampler's
  proposal mixture around the exact best fit when the finish bridged from the emulator posterior, the emulator
  posterior otherwise (a finish that moved an importance sample along a valley gets the proposal mixture);
- ``other start+moves N``: its particles moved on the same way.

Per stage: per free parameter the pull (median - truth in 68 % half-widths) and half-width, truths inside the 68 % and
95 % intervals, exact simulations, the particles' median ln L; and each stage against ``finish``: the largest shift
of a median in the finish's half-widths and the range of width ratios. Written to DIR/all/agreement/mockKKK.json;
each stage's particles to DIR/all/agreement/mockKKK_<stage>.npz (atomically), so an interrupted run continues.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402
from bench_coverage import inside, mock_galaxy, sampled  # noqa: E402

from galsr.simulator.fileio import atomic_path, write_json_atomic  # noqa: E402

LEVELS = [2.5, 16, 50, 84, 97.5]


def describe(x, logl, truth, evaluations):
    """A stage's record from its equally weighted particles ``x`` (N, ndim), their ln L (N,) and the free truths
    (ndim,)."""
    q = np.percentile(x, LEVELS, axis=0).T  # (ndim, 5)
    half = (q[:, 3] - q[:, 1]) / 2
    entries = [{"q": list(map(float, row)), "truth": float(t)} for row, t in zip(q, truth)]
    return {"pull": [round(float(v), 2) for v in (q[:, 2] - truth) / half],
            "half_width": [float(v) for v in half], "median": [float(v) for v in q[:, 2]],
            "in68": int(sum(inside(e, 68) for e in entries)), "in95": int(sum(inside(e, 95) for e in entries)),
            "simulations": int(evaluations), "median_lnl": float(np.median(logl))}


def against(stage, ref):
    """``stage`` against ``ref`` (two records of :func:`describe`): the largest |shift| of a median in ``ref``'s
    half-widths and the smallest and largest width ratio."""
    shift = np.abs(np.subtract(stage["median"], ref["median"])) / np.asarray(ref["half_width"])
    ratio = np.asarray(stage["half_width"]) / np.asarray(ref["half_width"])
    return {"max_shift": round(float(shift.max()), 2), "width_ratio": [round(float(ratio.min()), 2),
                                                                       round(float(ratio.max()), 2)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="bench_coverage.py results folder")
    ap.add_argument("--mock", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of further moves after each SMC run")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=30.0)
    args = ap.parse_args()
    print(machine_line(), flush=True)
    from galsr.finish import ExactEvaluator, _importance_fallback, _tempered_fallback, finish_fit
    from galsr.forward_models import SimulatorForward
    from galsr.simulator import PARAM_NAMES

    k, out = args.mock, os.path.join(args.out, "all")
    folder = os.path.join(out, "agreement")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"mock{k:03d}.json")
    truth, galaxy, fixed = mock_galaxy(k, PARAM_NAMES, args.seed, args.snr)
    emu, _ = sampled(out, k, galaxy, "emulator", args.workers, fixed, args.seed)
    t_free = truth[emu.prior.free_index]
    exact = SimulatorForward(galaxy.grid, galaxy.redshift)
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    record = json.load(open(path)) if os.path.exists(path) else {"mock": k, "stages": {}}

    def stage(name, run):
        """Particles of stage ``name``: from its file, or ``run()`` -> (x, ln L, simulations, info) saved."""
        npz = os.path.join(folder, f"mock{k:03d}_{name.replace(' ', '_').replace('+', '_')}.npz")
        if name in record["stages"] and os.path.exists(npz):
            z = np.load(npz)
            return z["x"], z["logl"], record["stages"][name]
        x, logl, n, info = run()
        with atomic_path(npz) as tmp:
            np.savez(tmp, x=x, logl=logl)
        record["stages"][name] = dict(describe(x, logl, t_free, n), **info)
        if name != "finish":
            record["stages"][name]["against_finish"] = against(record["stages"][name], record["stages"]["finish"])
        write_json_atomic(path, record)
        s = record["stages"][name]
        say(f"{name}: {s['in68']}/{len(t_free)}, {s['in95']}/{len(t_free)}; pulls " +
            " ".join(f"{v:+.1f}" for v in s["pull"]) + (f"; against the finish {s['against_finish']}"
                                                         if "against_finish" in s else ""))
        return x, logl, s

    def finished():
        done = finish_fit(emu, workers=args.workers, seed=args.seed + k, progress=say)
        f = done.summary["finish"]
        return (np.asarray(done.results.samples), np.asarray(done.results.logl), f["n_exact"],
                {"reference": f.get("smc", {}).get("reference"), "trusted": f["trusted"]})

    def moved_on(x, logl, r):
        """Resample-move at beta = 1 from equally weighted particles (a systematic resample of equal weights keeps
        each once)."""
        def run():
            t, _ = _tempered_fallback(emu, exact, args.workers, args.seed + k + 100 * r, say,
                                      importance=(x, logl, np.full(len(x), -math.log(len(x))), 0.0, 0.0))
            return t.samples, t.logl, t.evaluations, {}
        return run

    x, logl, first = stage("finish", finished)
    if first.get("reference") is None:
        raise SystemExit(f"mock {k}'s finish did not take the SMC ({first}): nothing to check")
    for r in range(1, args.rounds + 1):
        x, logl, _ = stage(f"finish+moves {r}", moved_on(x, logl, r))
    other = "importance proposal" if first["reference"] == "emulator posterior" else "emulator posterior"

    def other_start():
        with ExactEvaluator(emu.prior, emu.data, exact, args.workers) as evaluate:
            _, more, mixture = _importance_fallback(emu, exact, evaluate, args.seed + k, say)
            n = evaluate.calls + more["n_exact_best_fit"]
        if mixture is None and other == "importance proposal":
            raise SystemExit(f"mock {k}: the exact importance sampler found no finite likelihood: no other start")
        t, info = _tempered_fallback(emu, exact, args.workers, args.seed + k, say, mixture, start_from=other)
        return t.samples, t.logl, n + t.evaluations + info["evaluations_choosing"], {"reference": other}

    x, logl, _ = stage("other start", other_start)
    for r in range(1, args.rounds + 1):
        x, logl, _ = stage(f"other start+moves {r}", moved_on(x, logl, 10 + r))
    print(json.dumps({n: s.get("against_finish") for n, s in record["stages"].items()}, indent=1))


if __name__ == "__main__":
    main()
