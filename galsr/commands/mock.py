"""``galsr mock``: a noisy mock observation in the galaxy input format, true parameters in the header."""
from galsr.commands._params import add_param_option, parse_param_overrides


from galsr.noise import NoiseModel  # numpy only: keeps --help light


def noise_from_args(args):
    """The :class:`galsr.noise.NoiseModel` of the --floor-* and --snr-max options."""
    return NoiseModel(args.floor_flux, args.floor_vel, args.floor_sigma, args.floor_ml_dex,
                      args.snr_max if args.snr_max and args.snr_max > 0 else None)


def register(subparsers):
    p = subparsers.add_parser(
        "mock", help="simulate a noisy mock galaxy (FITS input format, truth in the header)",
        description="Draw a galaxy from the prior with --seed (or set parameters with --param), simulate it on "
                    "the converged HR grid, add Gaussian noise with realistic per-map errors, systematic floors and "
                    "an S/N ceiling (galsr.mock) and write the galaxy input format.")
    p.add_argument("--seed", type=int, required=True, help="seed of the parameter draw and of the noise")
    p.add_argument("--snr", type=float, default=30.0, help="S/N of a typical bright pixel (default 30)")
    d = NoiseModel()
    p.add_argument("--floor-flux", type=float, default=d.floor_flux,
                   help=f"fractional flux-calibration error floor (default {d.floor_flux:g}, MaNGA-like)")
    p.add_argument("--floor-vel", type=float, default=d.floor_vel,
                   help=f"velocity error floor [km/s] (default {d.floor_vel:g})")
    p.add_argument("--floor-sigma", type=float, default=d.floor_sigma,
                   help=f"dispersion error floor [km/s] (default {d.floor_sigma:g})")
    p.add_argument("--floor-ml-dex", type=float, default=d.floor_ml_dex,
                   help=f"M/L error floor [dex] (default {d.floor_ml_dex:g}, stellar populations)")
    p.add_argument("--snr-max", type=float, default=d.snr_max,
                   help=f"ceiling on a pixel's S/N (default {d.snr_max:g}; 0 = none). Floors 0 and --snr-max 0 "
                        f"give the earlier floor-free noise")
    add_param_option(p, help_text="set a parameter instead of drawing it (repeatable; all 18 = no draw)")
    p.add_argument("--out", required=True, help="output FITS file")
    p.add_argument("--png", help="also save a 4-panel figure of the noisy maps")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from galsr.galaxy import write_galaxy
    from galsr.mock import make_mock

    galaxy = make_mock(seed=args.seed, snr=args.snr, noise=noise_from_args(args),
                       overrides=parse_param_overrides(args.param))
    write_galaxy(args.out, galaxy, overwrite=args.overwrite)
    print(f"wrote {args.out}: mock galaxy (seed {args.seed}, S/N {args.snr:g}), {int(galaxy.mask.sum())} of "
          f"{galaxy.mask.size} pixels masked")
    if args.png:
        from galsr.plots import plot_maps

        plot_maps(galaxy.maps, galaxy.grid, args.png, title=galaxy.object_name)
    return 0
