"""``galsr calibrate``: fit the emulator's per-galaxy error model on held-out galaxies and store it in the file."""


def register(subparsers):
    p = subparsers.add_parser(
        "calibrate", help="fit an emulator's per-galaxy error model (1-sigma per pixel) on held-out galaxies",
        description="Draw galaxies from the prior, compare the emulator with the converged simulation and store "
                    "a calibrated table of its error by distance from the centre, bulge size and sampling offset, "
                    "scaled per galaxy by how far its network disagrees with the simulated central patch, in the "
                    "emulator file (what `galsr fit` then uses).")
    p.add_argument("emulator", help="emulator file (*.galsr)")
    p.add_argument("--out", required=True, help="emulator file to write (may be the input)")
    p.add_argument("--n", type=int, default=2048, help="held-out galaxies (default 2048)")
    p.add_argument("--seed", type=int, default=20261129, help="seed of their draw (not a training seed)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def run(args):
    from galsr.training.error_calibration import calibrate

    calibrate(args.emulator, args.out, n=args.n, seed=args.seed, progress=True, overwrite=args.overwrite)
    print(f"wrote {args.out}: error model calibrated on {args.n} held-out galaxies (seed {args.seed})")
    return 0
