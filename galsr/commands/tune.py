"""``galsr tune``: BOHB search of iSRCNN's sizes and training hyperparameters (hpbandster; thesis chapter 5)."""


def register(subparsers):
    """Add the ``tune`` sub-command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "tune", help="BOHB hyperparameter search (hpbandster), budget = epochs",
        description="Tune iSRCNN with hpbandster's BOHB (budget = training epochs). Results (hpbandster json logs, "
                    "best_config.json for `galsr train --config`, trajectory, importance table, parallel-coordinates "
                    "and Pareto figures) go to --out. Other machines join a run with `galsr tune-worker "
                    "--nameserver HOST:PORT --run-id ID` (printed at start; use --host with a LAN address).")
    p.add_argument("dataset", help="HDF5 dataset written by `galsr generate` (must be complete)")
    p.add_argument("--out", required=True, help="tuning directory (created)")
    p.add_argument("--n-iterations", type=int, default=4, help="BOHB iterations (SH brackets) [4]")
    p.add_argument("--min-budget", type=float, default=1.0, help="smallest budget, epochs [1]")
    p.add_argument("--max-budget", type=float, default=8.0, help="largest budget, epochs [8] (thesis: 300)")
    p.add_argument("--eta", type=float, default=2.0, help="reduction factor, >= 2 [2, as the thesis]")
    p.add_argument("--workers", type=int, default=1, help="local worker processes; 0 = remote workers only [1]")
    p.add_argument("--objective", choices=("l1", "l1+latency"),
                   help="validation L1, or L1 with a single-galaxy CPU latency penalty [l1; --resume: as before]")
    p.add_argument("--groups", help="searched groups: all, local (n0, ni, m), global (lr, batch size, beta1, "
                                    "beta2), or local,global [all; --resume: as before]")
    p.add_argument("--seed", type=int, default=0, help="seed of BOHB, the search space and training [0]")
    p.add_argument("--resume", action="store_true", help="warm-start from --out's results and append to them")
    p.add_argument("--optimizer", choices=("bohb", "random"), default="bohb",
                   help="bohb, or hpbandster's random search at the max budget (for comparison) [bohb]")
    p.add_argument("--config", help="JSON training config for everything not searched [thesis values]")
    p.add_argument("--max-train", type=int, help="use at most this many training rows per evaluation")
    p.add_argument("--max-val", type=int, help="use at most this many validation rows per evaluation")
    p.add_argument("--latency-weight", type=float,
                   help="exponent w of loss = L1 * (latency/ref)**w (objective l1+latency) [0.5; --resume: as before]")
    p.add_argument("--latency-cap-ms", type=float, help="latency cap [ms]: loss *= (latency/cap)**8 above it")
    p.add_argument("--latency-ref-ms", type=float,
                   help="reference latency [ms] (default: the thesis iSRCNN measured on this machine)")
    p.add_argument("--host", default="127.0.0.1", help="nameserver/dispatcher address [127.0.0.1]")
    p.add_argument("--port", type=int, default=0, help="nameserver port [0 = a free one]")
    p.add_argument("--run-id", help="hpbandster run id [a fresh galsr-xxxxxxxx]")
    p.add_argument("--threads", type=int, default=1, help="torch threads per local worker [1]")
    p.add_argument("--min-workers", type=int,
                   help="workers (local + joined) to wait for before the first job [max(1, --workers)]")
    p.add_argument("--worker-timeout", type=float, default=120.0,
                   help="seconds to wait for workers to register (or come back) before giving up [120]")
    p.set_defaults(func=run)


def run(args):
    """Run the search; print where the results are. Returns 0."""
    import json

    from galsr.training.tuning.driver import tune

    from galsr.training.train import load_config

    base = load_config(args.config) if args.config else None
    res = tune(args.dataset, args.out, n_iterations=args.n_iterations, min_budget=args.min_budget,
               max_budget=args.max_budget, eta=args.eta, workers=args.workers, objective=args.objective,
               seed=args.seed, groups=args.groups, resume=args.resume, optimizer=args.optimizer, base_config=base,
               max_train=args.max_train, max_val=args.max_val, latency_weight=args.latency_weight,
               latency_cap_ms=args.latency_cap_ms, latency_ref_ms=args.latency_ref_ms, host=args.host,
               port=args.port, run_id=args.run_id, num_threads=args.threads, worker_timeout=args.worker_timeout,
               min_workers=args.min_workers)
    print(f"{res.n_evaluations} evaluations ({res.n_failed} failed), {res.budget_spent:g} epochs trained")
    if res.best_config is not None:
        print(f"best loss {res.best_loss:.5g} (val_l1 {res.best_info.get('val_l1', float('nan')):.5g}, latency "
              f"{res.best_info.get('latency_ms', float('nan')):.3g} ms): {json.dumps(res.best_config)}")
        print(f"train it with: galsr train {args.dataset} --out model.galsr --config "
              f"{res.files.get('best_config')}")
    print(f"results in {res.out_dir}")
    return 0
