"""``galsr simulate``: the maps of one galaxy to FITS (and a PNG figure)."""
from galsr.commands._params import add_param_option, parse_param_overrides


def register(subparsers):
    p = subparsers.add_parser(
        "simulate", help="simulate one galaxy's four maps to a FITS file",
        description="Simulate brightness, velocity, dispersion and M/L maps of one galaxy. Parameters not given "
                    "with --param take the values of simulator.EXAMPLE_GALAXY.")
    add_param_option(p)
    p.add_argument("--grid", choices=("hr", "lr"), default="hr",
                   help="hr: 80 x 80 at 0.5\" (converged); lr: 20 x 20 at 2\" (default: hr)")
    p.add_argument("--redshift", type=float, default=0.03, help="redshift (default 0.03)")
    p.add_argument("--psf-pho", type=float, default=1.3, help="photometric PSF FWHM in arcsec (default 1.3)")
    p.add_argument("--psf-kin", type=float, default=2.5, help="kinematic PSF FWHM in arcsec (default 2.5)")
    p.add_argument("--out", required=True, help="output FITS file")
    p.add_argument("--png", help="also save a 4-panel figure here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def run(args):
    from galsr.simulator import EXAMPLE_GALAXY, ParameterSpace, default_grids, simulate

    from galsr.maps_fits import check_new_fits_path, write_maps
    from galsr.plots import plot_maps

    check_new_fits_path(args.out, args.overwrite)  # before the simulation, not after it
    params, violations = ParameterSpace(redshift=args.redshift).complete(parse_param_overrides(args.param),
                                                                          EXAMPLE_GALAXY)
    for why in violations:
        print(f"galsr simulate: warning: outside the physical cuts of the prior: {why}")
    hr, lr = default_grids(args.redshift, args.psf_pho, args.psf_kin)
    grid = hr if args.grid == "hr" else lr
    maps = simulate(params, grid, redshift=args.redshift)
    write_maps(args.out, maps, grid, args.redshift, params, overwrite=args.overwrite)
    print(f"wrote {args.out} ({args.grid.upper()} grid {grid.npix} x {grid.npix}, {grid.pixel_kpc:.4f} kpc/pixel)")
    if args.png:
        plot_maps(maps, grid, args.png, title=f"galsr simulate ({args.grid.upper()} grid, z = {args.redshift})")
        print(f"wrote {args.png}")
    return 0
