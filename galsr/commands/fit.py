"""``galsr fit``: nested-sampling fit of a galaxy FITS file with the emulator (default) or the full simulator."""
from galsr.commands._params import add_param_option, parse_param_overrides


def register(subparsers):
    p = subparsers.add_parser(
        "fit", help="fit the 18 model parameters to a galaxy's maps (dynesty)",
        description="Estimate the bulge + discs + halo parameters of a galaxy from its brightness, velocity, "
                    "dispersion (and M/L) maps by nested sampling. Writes samples, summary.json, a corner plot, "
                    "best-fit maps and a data/model/residual figure to --out.")
    p.add_argument("galaxy", help="galaxy FITS file (FLUX, VEL, SIGMA, [ML] with _ERR, header REDSHIFT, PIXSCALE, "
                                  "PSFPHO, PSFKIN)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--emulator", help="emulator file (default: the shipped one)")
    src.add_argument("--forward", choices=("emulator", "simulator"), default="emulator",
                     help="forward model: the emulator (default) or the full simulation on the data's own grid")
    p.add_argument("--nlive", type=int, help="live points (default: 5 x the free parameters, measured to converge)")
    p.add_argument("--quick", action="store_true",
                   help="a quick look: nlive 60, 15 random-walk steps (not converged in 18 dimensions; the table and "
                        "summary.json say so)")
    p.add_argument("--finish", choices=("reweight", "none"), default="reweight",
                   help="after an emulator fit, reweight its posterior to the full simulation (default; falls back "
                        "to an exact-likelihood importance sampler when the effective sample size is too low), or "
                        "none: report the emulator posterior")
    p.add_argument("--dlogz", type=float, help="stopping criterion on the remaining evidence (default 0.5)")
    p.add_argument("--workers", type=int, default=2, help="likelihood processes (default 2; at most the cores)")
    add_param_option(p, "--fix", "hold a parameter fixed at a value (repeatable)")
    p.add_argument("--seed", type=int, help="sampler seed (default 0)")
    p.add_argument("--maxcall", type=int, help="stop after this many likelihood calls")
    p.add_argument("--out", help="output directory (default: fit_<file name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out (same input and "
                                                          "settings; only a checkpoint this user's galsr signed)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
    p.set_defaults(func=run)


def run(args):
    import os

    from galsr.galaxy import read_galaxy
    from galsr.simulator.fileio import exclusive_lock
    from galsr.simulator.limits import cap_workers

    galaxy = read_galaxy(args.galaxy)
    out = args.out or "fit_" + os.path.splitext(os.path.basename(args.galaxy))[0]
    args.workers = cap_workers(args.workers, "--workers")
    with exclusive_lock(out):  # held from the first check of --out to the last output written
        return _run_locked(args, galaxy, out)


def _run_locked(args, galaxy, out):
    import sys

    from galsr.fit_outputs import prepare_output_dir, write_fit_outputs
    from galsr.fit_results import format_table
    from galsr.fitting import fit

    prepare_output_dir(out, resume=args.resume, overwrite=args.overwrite)
    print(f"fitting {args.galaxy} with the {args.forward if not args.emulator else 'emulator'} forward model, "
          f"{args.workers} worker(s); outputs go to {out}/", flush=True)
    result = fit(galaxy, forward=args.forward, emulator=args.emulator, nlive=args.nlive, dlogz=args.dlogz,
                 workers=args.workers, fixed=parse_param_overrides(args.fix, "--fix"), seed=args.seed,
                 maxcall=args.maxcall, checkpoint_dir=out, resume=args.resume, quick=args.quick,
                 progress=sys.stderr.isatty())  # dynesty's progress line, only on a terminal
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    from galsr.finish import finish_fit

    result = finish_fit(result, method=args.finish, workers=args.workers, seed=result.settings["seed"],
                        progress=lambda msg: print(msg, flush=True))
    print(format_table(result.summary))
    write_fit_outputs(result, out)
    r = result.run
    if r.get("finish", {}).get("method", "none") != "none":
        f = r["finish"]
        print(f"finish: {f['n_exact']} full simulations in {f['wall_time_s']:.1f} s, effective sample size "
              f"{f['ess']:.0f} ({f['method']}{'' if f['trusted'] else ', NOT TRUSTWORTHY'})")
    print(f"{r['n_likelihood_calls']} likelihood calls in {r['wall_time_s']:.1f} s "
          f"({r['calls_per_second']:.0f} calls/s, {r['forward_model_latency_ms']:.2f} ms per model call) with "
          f"{args.workers} worker(s); outputs in {out}/")
    return 0
