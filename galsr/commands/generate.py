"""``galsr generate``: an LR/HR training set in HDF5 (simulator.generate_dataset)."""


def register(subparsers):
    p = subparsers.add_parser(
        "generate", help="simulate an LR/HR training set to HDF5",
        description="Draw N galaxies by Latin-hypercube sampling of the prior box (rejecting points that violate "
                    "the physical cuts), simulate each on the LR grid (emulator input) and the converged HR grid "
                    "(target), and write one HDF5 file. Interrupted runs continue with --resume to the same bytes.")
    p.add_argument("--n", type=int, required=True, help="number of galaxies")
    p.add_argument("--seed", type=int, required=True, help="sampling seed (the file follows from it)")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--workers", type=int, help="parallel workers (default: all cores)")
    p.add_argument("--backend", choices=("threads", "processes"), default="threads",
                   help="numba threads in one process (default, measured faster here) or a process pool")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run (OUT.partial/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file or partial run")
    p.add_argument("--redshift", type=float, default=0.03)
    p.add_argument("--lr-npix", type=int, default=20, help="LR pixels per side (default 20)")
    p.add_argument("--hr-npix", type=int, default=80, help="HR pixels per side (default 80)")
    p.add_argument("--fov", type=float, default=40.0, help="field of view in arcsec (default 40)")
    p.add_argument("--val-fraction", type=float, default=1 / 3, help="validation share of /split (default 1/3)")
    p.add_argument("--block-size", type=int, default=64, help="rows per block of work (default 64)")
    p.set_defaults(func=run)


def run(args):
    from galsr.simulator import default_grids, generate_dataset

    hr, lr = default_grids(args.redshift, fov_arcsec=args.fov, hr_npix=args.hr_npix, lr_npix=args.lr_npix)
    generate_dataset(args.out, args.n, args.seed, lr, hr, args.redshift, workers=args.workers, resume=args.resume,
                     overwrite=args.overwrite, progress=True, val_fraction=args.val_fraction,
                     block_size=args.block_size, backend=args.backend)
    print(f"wrote {args.out}: {args.n} galaxies, LR {lr.npix}x{lr.npix}, HR {hr.npix}x{hr.npix}")
    return 0
