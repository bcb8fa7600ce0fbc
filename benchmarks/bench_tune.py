"""Benchmark: BOHB against random search at the same total budget, and the tuned model against the thesis sizes.

Usage (defaults are laptop-sized; the thesis used 300 epochs and 128 samples per search)::

    python benchmarks/bench_tune.py --dataset data.h5 --out bench_tune \\
        --n-iterations 4 --min-budget 1 --max-budget 8 --eta 2 --workers 2 --max-train 256 --max-val 128 --repeats 2

Steps (every run uses the same dataset, seed and row caps):

1. BOHB (``galsr.training.tuning.driver.tune``) for ``--n-iterations`` iterations; the epochs it actually trained are its budget.
2. hpbandster's random search with ``min_budget = max_budget`` (one configuration per iteration, each trained for
   max_budget epochs) for ``round(BOHB epochs / max_budget)`` iterations: the same total budget. It samples with
   ``seed + 100``: with BOHB's seed it would redraw exactly BOHB's own random configurations.
3. Best validation L1 among fully trained (max-budget) configurations as a function of epochs spent, for both.
4. The thesis configuration (n0/ni/m = 60/16/8, lr 0.0035, batch 32, betas 0.957/0.929) trained for max_budget
   epochs with the same data and seed, against the BOHB incumbent: validation L1, single-galaxy CPU latency
   (batch 1, one thread; re-measured after the searches, with no worker running) and parameter count.

``--repeats R`` repeats all of it with seeds seed .. seed+R-1. Writes ``<out>/bench_tune.json``,
``<out>/bench_tune.md`` (a table to paste into docs/tuning.md) and ``<out>/bench_tune.png`` (best L1 vs epochs).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

#: Random search samples with seed + this offset (an independent stream; training seeds differ alike).
RANDOM_SEED_OFFSET = 100


def best_full_curve(tune_dir):
    """[(cum_epochs, best max-budget val_l1 so far)] of a tuning directory (NaN before the first)."""
    from galsr.training.tuning.report import collect_evaluations, trajectory

    rows = trajectory(collect_evaluations(tune_dir))
    return [(r["cum_epochs"], r["best_full_val_l1"]) for r in rows]


def quiet_latency(model_path, dataset):
    """(latency_ms, n_params) of a trained emulator file, measured with no tuning worker running (300 repeats)."""
    from galsr.training.tuning.dataset import dataset_fingerprint
    from galsr.training.tuning.latency import latency_of_emulator_file

    c, _, n = dataset_fingerprint(dataset)["lr_shape"]
    return latency_of_emulator_file(model_path, c, n, repeats=300)


def train_reference(dataset, out_dir, config, epochs, seed, max_train, max_val):
    """Train ``config`` for ``epochs``; returns {val_l1, latency_ms, n_params, seconds}."""
    from galsr.training.train import train

    path = str(Path(out_dir) / "thesis_config.galsr")
    t0 = time.perf_counter()
    res = train(dataset, path, dict(config, epochs=int(epochs)), epochs=int(epochs), seed=seed, progress=False,
                max_train=max_train, max_val=max_val, num_threads=1)
    seconds = time.perf_counter() - t0
    latency, n_params = quiet_latency(path, dataset)
    return {"val_l1": float(res.best_val_l1), "latency_ms": latency, "n_params": n_params, "seconds": seconds}


def search_record(res, wall_s, dataset):
    """Row of one search: budget, evaluations, wall time, incumbent val L1 / latency (re-measured quietly)."""
    info = res.best_info
    latency = quiet_latency(info["model_path"], dataset)[0] if info.get("model_path") else None
    return {"epochs": res.budget_spent, "evaluations": res.n_evaluations, "wall_s": wall_s,
            "best_val_l1": info.get("val_l1"), "latency_ms": latency, "latency_ms_during_run": info.get("latency_ms"),
            "n_params": info.get("n_params"), "best_config": res.best_config}


def run_once(a, seed, out):
    """One repetition: BOHB, random search at the same epochs, the thesis config; returns its record."""
    from galsr.training.tuning.driver import tune
    from galsr.training.tuning.space import THESIS_BEST

    out.mkdir(parents=True, exist_ok=True)
    common = dict(workers=a.workers, objective=a.objective, max_train=a.max_train, max_val=a.max_val, eta=a.eta)
    t0 = time.perf_counter()
    bohb = tune(a.dataset, out / "bohb", n_iterations=a.n_iterations, min_budget=a.min_budget,
                max_budget=a.max_budget, seed=seed, **common)
    t_bohb = time.perf_counter() - t0
    n_random = max(1, round(bohb.budget_spent / a.max_budget))
    t0 = time.perf_counter()
    # an independent sampling stream: with the same seed, random search would redraw BOHB's own random picks
    rand = tune(a.dataset, out / "random", n_iterations=n_random, min_budget=a.max_budget, max_budget=a.max_budget,
                optimizer="random", seed=seed + RANDOM_SEED_OFFSET, **common)
    t_rand = time.perf_counter() - t0
    ref = train_reference(a.dataset, out, THESIS_BEST, a.max_budget, seed, a.max_train, a.max_val)
    return {"seed": seed, "bohb": search_record(bohb, t_bohb, a.dataset),
            "random": search_record(rand, t_rand, a.dataset), "thesis_config": ref,
            "curves": {"bohb": best_full_curve(out / "bohb"), "random": best_full_curve(out / "random")}}


def fmt(v, f):
    """format() that prints n/a for None and NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, f)


def table(records, max_budget):
    """Markdown table of every repetition (str)."""
    lines = ["| seed | search | epochs spent | evaluations | wall [s] | best val L1 (max budget) | latency [ms] | "
             "params | n0/ni/m |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        for name in ("bohb", "random"):
            r = rec[name]
            c = r["best_config"] or {}
            lines.append(f"| {rec['seed']} | {name} | {r['epochs']:g} | {r['evaluations']} | {r['wall_s']:.0f} | "
                         f"{fmt(r['best_val_l1'], '.5f')} | {fmt(r['latency_ms'], '.2f')} | {r['n_params']} | "
                         f"{c.get('n0')}/{c.get('ni')}/{c.get('m')} |")
        ref = rec["thesis_config"]
        lines.append(f"| {rec['seed']} | thesis config | {max_budget:g} | 1 | {ref['seconds']:.0f} | "
                     f"{ref['val_l1']:.5f} | {ref['latency_ms']:.2f} | {ref['n_params']} | 60/16/8 |")
    return "\n".join(lines) + "\n"


def plot(records, max_budget, path):
    """Best max-budget validation L1 against epochs spent, every repetition (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rec in records:
        for i, (name, curve) in enumerate(rec["curves"].items()):
            if curve:
                ax.step([c[0] for c in curve], [c[1] for c in curve], where="post", c=f"C{i}",
                        label=f"{name} (seed {rec['seed']})", alpha=0.8)
        ax.axhline(rec["thesis_config"]["val_l1"], ls=":", c="k")
    ax.set_xlabel("epochs trained (cumulative)")
    ax.set_ylabel(f"best validation L1 at {max_budget:g} epochs")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", default="bench_tune")
    ap.add_argument("--n-iterations", type=int, default=4)
    ap.add_argument("--min-budget", type=float, default=1)
    ap.add_argument("--max-budget", type=float, default=8)
    ap.add_argument("--eta", type=float, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--objective", default="l1")
    ap.add_argument("--max-train", type=int)
    ap.add_argument("--max-val", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="repetitions with seeds seed, seed+1, ...")
    a = ap.parse_args(argv)

    out = Path(a.out)
    records = [run_once(a, a.seed + r, out / f"seed{a.seed + r}") for r in range(a.repeats)]
    (out / "bench_tune.json").write_text(json.dumps({"settings": vars(a), "runs": records}, indent=2,
                                                    default=float) + "\n")
    text = table(records, a.max_budget)
    (out / "bench_tune.md").write_text(text)
    print(text)
    plot(records, a.max_budget, out / "bench_tune.png")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
