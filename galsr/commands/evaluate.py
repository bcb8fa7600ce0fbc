"""``galsr evaluate``: score an emulator against FSRCNN / bicubic baselines on a validation set."""


def register(subparsers):
    """Add the ``evaluate`` sub-command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "evaluate", help="validation metrics of an emulator vs baselines (table + LR/HR/SR/residual figure)",
        description="Evaluate an emulator file on the validation split of a galsr dataset, side by side with "
                    "baseline emulator files (e.g. a trained FSRCNN) and plain bicubic up-sampling: L1 on "
                    "normalised maps, PSNR, per-channel median and 95th-percentile errors in physical units "
                    "(relative for brightness, sigma, M/L; km/s for velocity) and single-thread latency at batch 1 "
                    "and 64. Writes metrics.json, table.md and examples.png to --out.")
    p.add_argument("model", help="emulator file (*.galsr)")
    p.add_argument("dataset", help="HDF5 dataset on the emulator's grids (its validation split is used)")
    p.add_argument("--baseline", action="append", default=[], metavar="FILE",
                   help="baseline emulator file (repeatable), e.g. a trained FSRCNN; bicubic is always included")
    p.add_argument("--out", help="directory for metrics.json, table.md, examples.png")
    p.add_argument("--max-val", type=int, help="use only the first N validation galaxies")
    p.add_argument("--examples", type=int, default=3, help="galaxies in the figure [3]")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurements")
    p.add_argument("--threads", type=int, default=1, help="torch threads for latency [1]")
    p.add_argument("--seed", type=int, default=0, help="picks the figure's galaxies [0]")
    p.set_defaults(func=run)


def run(args):
    """Evaluate and print the table. Returns 0."""
    from galsr.training.evaluate import evaluate, format_table

    res = evaluate(args.model, args.dataset, baselines=args.baseline, max_val=args.max_val, out_dir=args.out,
                   n_examples=args.examples if args.out else 0, latency=not args.no_latency, threads=args.threads,
                   seed=args.seed)
    print(format_table(res))
    for name, path in res["files"].items():
        print(f"wrote {name}: {path}")
    return 0
