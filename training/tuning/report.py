"""Analysis of a tuning directory: incumbent trajectory, hyperparameter importance, parallel coordinates, Pareto front.

Reads hpbandster's json logs (``configs.json``, ``results.json``) of ``galsr tune`` and writes, next to them:

- ``best_config.json``: the incumbent's training config (``galsr train --config`` accepts it; ``"epochs"`` is the
  largest budget it was evaluated at -- override with ``--epochs``). Incumbent = lowest loss among evaluations at
  the largest budget reached (hpbandster's definition).
- ``evaluations.csv``: one row per finished evaluation (config id, budget, loss, val_l1, latency, parameters).
- ``trajectory.csv`` / ``trajectory.png``: after each finished evaluation (in finishing order): wall time,
  cumulative epochs trained, the incumbent loss (hpbandster's rule: a run at a larger budget replaces the incumbent)
  and the best validation L1 among fully trained (max-budget) configurations so far.
- ``importance.csv`` / ``importance.md``: the thesis's Table 5.4: per hyperparameter the relative importance and the
  Spearman correlation with the loss, on the evaluations of the largest budget with at least
  :data:`MIN_ROWS_IMPORTANCE` results. Importance is each hyperparameter's first-order (main-effect) share of the
  variance of the loss ranks -- the between-bin variance over quantile bins of that hyperparameter, bias-corrected
  (epsilon-squared: minus what bins explain in pure noise) and clipped at 0 -- normalised to sum to 1, like the
  thesis's (which also sum to 1 per search). Ranks, because one diverged run (loss 1e9) would otherwise own the
  variance.
- ``parallel_coordinates.png``: the thesis's Figure 5.5, one panel per searched group (local: n0, ni, m; global:
  batch size, beta1, beta2, learning rate) plus the loss axis, lines coloured by loss (red = low).
- ``pareto.csv`` / ``pareto.png``: validation L1 against single-galaxy CPU latency for every fully trained
  configuration, the non-dominated (Pareto) set marked.
- ``summary.json``: counts, budget spent, the incumbent, the Pareto set and the file names.
"""
import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from galsr.simulator.fileio import atomic_path, save_figure, write_json_atomic, write_text_atomic
from galsr.training.tuning.pyro_compat import to_builtins
from galsr.training.tuning.record import SETTINGS_FILE
from galsr.training.tuning.results import CONFIGS_FILE, RESULTS_FILE
from galsr.training.tuning.space import GROUPS, LOG_SCALE, _hyperparameter, to_train_config

#: Fewest evaluations of one budget that importance and correlations are computed on.
MIN_ROWS_IMPORTANCE = 4
#: Hyperparameters shown and binned on log10 axes (the learning rate is searched log-uniformly, batch sizes are
#: powers of two).
LOG_AXES = LOG_SCALE + ("batch_size",)
#: Axis labels (thesis notation).
LABELS = {"n0": "outer channels n0", "ni": "inner channels ni", "m": "mapping layers m", "lr": "learning rate",
          "batch_size": "batch size", "beta1": "beta1", "beta2": "beta2"}


def collect_evaluations(out_dir):
    """Every finished evaluation in ``out_dir``'s json logs (list of dicts, finishing order).

    Each dict: config_id (list), budget (float), loss (float or None), info (dict), config (searched values),
    train_config (full training config), finished (unix s), exception (str or None).
    """
    out_dir = Path(out_dir)
    settings_fn = out_dir / SETTINGS_FILE
    base = json.loads(settings_fn.read_text()).get("base_config") if settings_fn.exists() else None
    configs = {}
    cfn, rfn = out_dir / CONFIGS_FILE, out_dir / RESULTS_FILE
    if not rfn.exists():
        return []
    for line in cfn.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            configs[tuple(row[0])] = row[1]
    evals = []
    for line in rfn.read_text().splitlines():
        if not line.strip():
            continue
        cid, budget, stamps, result, exception = json.loads(line)
        config = configs.get(tuple(cid), {})
        info = (result or {}).get("info") or {}
        loss = None if result is None or result.get("loss") is None else float(result["loss"])
        if loss is not None and not math.isfinite(loss):
            loss = None
        evals.append({"config_id": cid, "budget": float(budget), "loss": loss, "info": info, "config": config,
                      "train_config": info.get("train_config") or to_train_config(config, base, round(budget)),
                      "finished": float(stamps.get("finished", 0.0)), "exception": exception})
    evals.sort(key=lambda e: e["finished"])
    return evals


def _write_csv(path, header, rows):
    """Write a CSV atomically (tmp file + os.replace)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def incumbent(evals):
    """The evaluation with the lowest loss at the largest budget that has a result (dict), or None."""
    ok = [e for e in evals if e["loss"] is not None]
    if not ok:
        return None
    top = max(e["budget"] for e in ok)
    return min((e for e in ok if e["budget"] == top), key=lambda e: e["loss"])


def trajectory(evals, max_budget=None):
    """Incumbent trajectory (list of dicts, finishing order).

    Keys: time_s (wall time since the start of the first finished evaluation), cum_epochs (epochs trained so
    far), config_id, budget, loss, incumbent_loss and incumbent_budget (hpbandster's rule: a larger budget
    replaces the incumbent, an equal one improves it), best_full_val_l1 (best val_l1 among evaluations at
    ``max_budget`` so far; NaN before the first).
    """
    ok = [e for e in evals if e["loss"] is not None]
    if not ok:
        return []
    max_budget = max_budget or max(e["budget"] for e in ok)
    t0 = ok[0]["finished"] - ok[0]["info"].get("train_seconds", 0.0)
    cum, inc_loss, inc_budget, best_full = 0.0, math.inf, -math.inf, math.nan
    rows = []
    for e in evals:
        cum += e["info"].get("epochs_trained", e["budget"]) if e["loss"] is not None else 0.0
        if e["loss"] is not None:
            if e["budget"] > inc_budget or (e["budget"] == inc_budget and e["loss"] < inc_loss):
                inc_loss, inc_budget = e["loss"], e["budget"]
            if e["budget"] >= max_budget and "val_l1" in e["info"]:
                v = e["info"]["val_l1"]
                best_full = v if math.isnan(best_full) else min(best_full, v)
        rows.append({"time_s": e["finished"] - t0, "cum_epochs": cum, "config_id": e["config_id"],
                     "budget": e["budget"], "loss": e["loss"], "incumbent_loss": inc_loss,
                     "incumbent_budget": inc_budget, "best_full_val_l1": best_full})
    return rows


def pareto_mask(points):
    """Boolean mask of the non-dominated rows of ``points`` (N, k), all objectives minimised.

    A row is dominated when another row is <= in every objective and < in at least one. Duplicates of a
    non-dominated point are all kept.
    """
    p = np.asarray(points, dtype=float)
    mask = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        le = np.all(p <= p[i], axis=1)
        lt = np.any(p < p[i], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return mask


def _numeric(name, values):
    """Hyperparameter values on the scale used for importance/correlation/plots (log10 for LOG_AXES)."""
    v = np.asarray(values, dtype=float)
    return np.log10(v) if name in LOG_AXES else v


def first_order_importance(x, y, n_bins=None):
    """Bias-corrected share of Var(y) explained by bins of x (epsilon-squared, clipped at 0; float in [0, 1]).

    Bins are the distinct values of x when it has at most ``n_bins`` of them, else quantile bins; ``n_bins``
    defaults to len(x) // 4 clipped to [2, 4] (at least about 4 points per bin).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n_bins = n_bins or int(np.clip(len(x) // 4, 2, 4))
    uniq = np.unique(x)
    if len(uniq) <= n_bins:
        labels = np.searchsorted(uniq, x)
    else:
        edges = np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1])
        labels = np.searchsorted(edges, x, side="right")
    groups = [y[labels == k] for k in np.unique(labels)]
    k, n = len(groups), len(y)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if k < 2 or n <= k or ss_tot == 0.0:
        return 0.0
    ss_between = sum(len(g) * (g.mean() - y.mean()) ** 2 for g in groups)
    ms_within = (ss_tot - ss_between) / (n - k)
    return float(max(0.0, (ss_between - (k - 1) * ms_within) / ss_tot))


def spearman(x, y):
    """Spearman rank correlation of x and y (float; NaN when either is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(np.asarray(x, float)) == 0 or np.ptp(np.asarray(y, float)) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def importance_table(evals, names):
    """Table 5.4: [{name, importance, correlation}] on the largest budget with >= MIN_ROWS_IMPORTANCE results.

    Returns:
        (rows, budget, n) -- rows in ``names`` order, importances summing to 1 (all 0 when no hyperparameter
        explains anything), the budget used and the number of evaluations; (None, None, 0) if too few.
    """
    from scipy.stats import rankdata

    ok = [e for e in evals if e["loss"] is not None]
    budgets = sorted({e["budget"] for e in ok}, reverse=True)
    for b in budgets:
        sel = [e for e in ok if e["budget"] == b]
        if len(sel) >= MIN_ROWS_IMPORTANCE:
            break
    else:
        return None, None, 0
    y = rankdata([e["loss"] for e in sel])  # ranks: one diverged run must not own the variance
    raw, corr = [], []
    for name in names:
        x = _numeric(name, [e["train_config"][name] for e in sel])
        raw.append(first_order_importance(x, y))
        corr.append(spearman(x, y))
    total = sum(raw)
    rel = [r / total if total > 0 else 0.0 for r in raw]
    return [{"name": n, "importance": r, "correlation": c} for n, r, c in zip(names, rel, corr)], b, len(sel)


def _axis_range(name):
    """(low, high) of a hyperparameter's axis on its plotting scale (the search-space bounds)."""
    hp = _hyperparameter(name)
    if hasattr(hp, "choices"):
        lo, hi = min(hp.choices), max(hp.choices)
    else:
        lo, hi = hp.lower, hp.upper
    return tuple(_numeric(name, [lo, hi]))


def plot_parallel_coordinates(evals, groups, path, budget=None):
    """Figure 5.5: per group, parallel axes of its hyperparameters and the loss; red = low loss. Returns path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [e for e in evals if e["loss"] is not None]
    if budget is None and ok:
        budget = max(e["budget"] for e in ok)
    sel = [e for e in ok if e["budget"] == budget] or ok
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 3.2 * len(groups)), squeeze=False)
    cmap = plt.get_cmap("coolwarm_r")
    losses = np.array([e["loss"] for e in sel]) if sel else np.ones(0)
    log_loss = bool(len(losses)) and bool(np.all(losses > 0))  # losses span decades (diverged runs): log axis

    def scale(v):
        return np.log10(v) if log_loss else v

    lo, hi = (scale(losses.min()), scale(losses.max())) if len(losses) else (0.0, 1.0)
    for ax, group in zip(axes[:, 0], groups):
        names = list(GROUPS[group])
        cols = names + ["loss"]
        for e in sorted(sel, key=lambda e: -e["loss"]):  # best drawn last (on top)
            ys = [(_numeric(n, [e["train_config"][n]])[0] - _axis_range(n)[0]) / np.ptp(_axis_range(n))
                  for n in names]
            t = (scale(e["loss"]) - lo) / (hi - lo) if hi > lo else 0.5
            ys.append(t)
            ax.plot(range(len(cols)), ys, color=cmap(t), alpha=0.8, lw=1.5)
        for i, n in enumerate(cols):
            ax.axvline(i, color="k", lw=0.8)
            if n == "loss":
                lo_txt, hi_txt = (f"{10 ** lo:.3g}", f"{10 ** hi:.3g}") if log_loss else (f"{lo:.3g}", f"{hi:.3g}")
            else:
                a, b = _axis_range(n)
                fmt = ".0e" if n in LOG_SCALE else ".4g"
                lo_txt, hi_txt = (f"{10 ** a:{fmt}}", f"{10 ** b:{fmt}}") if n in LOG_AXES else (f"{a:g}", f"{b:g}")
            ax.text(i, -0.08, lo_txt, ha="center", va="top", fontsize=8)
            ax.text(i, 1.08, hi_txt, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels([LABELS.get(n, n) for n in names] + ["loss (log)" if log_loss else "loss"])
        ax.set_yticks([])
        ax.set_ylim(-0.2, 1.2)
        ax.set_title(f"{group} hyperparameters ({len(sel)} evaluations at {budget:g} epochs; red = low loss)",
                     fontsize=10)
    fig.tight_layout()
    return str(save_figure(fig, path))


def plot_trajectory(rows, path):
    """Incumbent loss and best fully-trained validation L1 against cumulative epochs. Returns path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [r["cum_epochs"] for r in rows]
    ax.step(x, [r["incumbent_loss"] for r in rows], where="post", label="incumbent loss")
    ax.step(x, [r["best_full_val_l1"] for r in rows], where="post", label="best val L1 at max budget")
    ax.set_xlabel("epochs trained (cumulative)")
    ax.set_ylabel("loss")
    return _finish_log_plot(fig, ax, path)


def _finish_log_plot(fig, ax, path):
    """Log y axis, legend, save to ``path``, close; returns str(path)."""
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    return str(save_figure(fig, path))


def plot_pareto(full, mask, path):
    """Validation L1 vs latency of fully trained configs, Pareto set joined and labelled. Returns path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    lat = np.array([e["info"]["latency_ms"] for e in full])
    l1 = np.array([e["info"]["val_l1"] for e in full])
    ax.scatter(lat[~mask], l1[~mask], c="0.6", s=18, label="dominated")
    order = np.argsort(lat[mask])
    ax.plot(lat[mask][order], l1[mask][order], "o-", c="C3", label="Pareto front")
    for e in np.array(full, dtype=object)[mask]:
        c = e["train_config"]
        ax.annotate(f"{c['n0']}/{c['ni']}/{c['m']}", (e["info"]["latency_ms"], e["info"]["val_l1"]),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("single-galaxy CPU latency [ms] (batch 1, 1 thread)")
    ax.set_ylabel("validation L1 (normalised maps)")
    return _finish_log_plot(fig, ax, path)  # log: diverged runs sit decades above the rest


def write_report(out_dir, evals, settings):
    """Write every report file of the module docstring into out_dir; returns {name: path}."""
    out_dir = Path(out_dir)
    files = {}
    groups = settings.get("groups", list(GROUPS))
    names = [n for g in groups for n in GROUPS[g]]
    ok = [e for e in evals if e["loss"] is not None]

    files["evaluations"] = str(out_dir / "evaluations.csv")
    _write_csv(files["evaluations"], ["config_id", "budget", "loss", "val_l1", "latency_ms", "n_params",
                                      "epochs_trained"] + names + ["error"],
               [[json.dumps(e["config_id"]), e["budget"], e["loss"], e["info"].get("val_l1"),
                 e["info"].get("latency_ms"), e["info"].get("n_params"), e["info"].get("epochs_trained")]
                + [e["train_config"].get(n) for n in names]
                + [((e["exception"] or "").strip().splitlines() or [""])[-1]] for e in evals])
    summary = {"n_evaluations": len(evals), "n_failed": len(evals) - len(ok),
               "epochs_trained": float(sum(e["info"].get("epochs_trained", 0) for e in ok)),
               "objective": settings.get("objective"), "groups": groups}
    best = incumbent(evals)
    if best is not None:
        files["best_config"] = str(out_dir / "best_config.json")
        write_json_atomic(files["best_config"], to_builtins(best["train_config"]), sort_keys=True)
        summary["incumbent"] = {"config_id": best["config_id"], "budget": best["budget"], "loss": best["loss"],
                                **{k: best["info"].get(k) for k in ("val_l1", "latency_ms", "n_params")},
                                "train_config": best["train_config"]}
    rows = trajectory(evals)
    if rows:
        files["trajectory"] = str(out_dir / "trajectory.csv")
        keys = list(rows[0])
        _write_csv(files["trajectory"], keys, [[json.dumps(r[k]) if k == "config_id" else r[k] for k in keys]
                                              for r in rows])
        files["trajectory_png"] = plot_trajectory(rows, out_dir / "trajectory.png")
    table, budget, n = importance_table(evals, names)
    if table is not None:
        files["importance"] = str(out_dir / "importance.csv")
        _write_csv(files["importance"], ["hyperparameter", "importance", "correlation_with_loss"],
                   [[r["name"], f"{r['importance']:.3f}", f"{r['correlation']:.3f}"] for r in table])
        md = [f"Hyperparameter importance ({n} evaluations at {budget:g} epochs)", "",
              "| Hyperparameter | Importance | Correlation with loss |", "|---|---|---|"]
        md += [f"| {LABELS[r['name']]} | {r['importance']:.3f} | {r['correlation']:.3f} |" for r in table]
        files["importance_md"] = str(out_dir / "importance.md")
        write_text_atomic(files["importance_md"], "\n".join(md) + "\n")
        summary["importance"] = {"budget": budget, "n": n, "rows": table}
    if ok:
        files["parallel_coordinates"] = plot_parallel_coordinates(evals, groups,
                                                                  out_dir / "parallel_coordinates.png")
    full = [e for e in ok if best is not None and e["budget"] == best["budget"]
            and "latency_ms" in e["info"] and "val_l1" in e["info"]]
    if full:
        mask = pareto_mask([[e["info"]["val_l1"], e["info"]["latency_ms"]] for e in full])
        files["pareto"] = str(out_dir / "pareto.csv")
        _write_csv(files["pareto"], ["config_id", "val_l1", "latency_ms", "n_params", "pareto", "n0", "ni", "m"],
                   [[json.dumps(e["config_id"]), e["info"]["val_l1"], e["info"]["latency_ms"],
                     e["info"].get("n_params"), bool(m)] + [e["train_config"][k] for k in ("n0", "ni", "m")]
                    for e, m in zip(full, mask)])
        files["pareto_png"] = plot_pareto(full, mask, out_dir / "pareto.png")
        summary["pareto"] = [{"config_id": e["config_id"], "val_l1": e["info"]["val_l1"],
                              "latency_ms": e["info"]["latency_ms"], "n_params": e["info"].get("n_params"),
                              "train_config": e["train_config"]} for e, m in zip(full, mask) if m]
    files["summary"] = str(out_dir / "summary.json")
    summary["files"] = {k: os.path.basename(v) for k, v in files.items()}
    write_json_atomic(files["summary"], to_builtins(summary), sort_keys=True)
    return files
