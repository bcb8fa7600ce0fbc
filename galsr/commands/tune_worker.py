"""``galsr tune-worker``: join a running ``galsr tune`` from this machine (hpbandster's Pyro4 worker protocol)."""


def register(subparsers):
    """Add the ``tune-worker`` sub-command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "tune-worker", help="join a `galsr tune` run as an extra worker",
        description="Connect to the nameserver of a running `galsr tune` (it prints HOST:PORT and the run id), "
                    "fetch the run's settings, and train configurations until the run ends. Gives up with a "
                    "message (exit 2) when the nameserver or the run cannot be found within --timeout seconds.")
    p.add_argument("--nameserver", required=True, help="HOST:PORT of the run's nameserver")
    p.add_argument("--run-id", required=True, help="run id printed by `galsr tune`")
    p.add_argument("--dataset", help="this machine's path of the run's dataset [the driver's path]")
    p.add_argument("--host", help="this machine's address reachable from the driver [route to the nameserver]")
    p.add_argument("--model-dir", help="where this worker keeps models/checkpoints [the run's, else ./]")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for (or tolerate losing) the nameserver and the run [60]")
    p.add_argument("--threads", type=int, help="torch threads for training [the run's setting]")
    p.set_defaults(func=run)


def run(args):
    """Serve jobs until the driver shuts this worker down. Returns 0."""
    from galsr.training.tuning.worker import serve

    return serve(args.nameserver, args.run_id, host=args.host, dataset_path=args.dataset,
                 model_dir=args.model_dir, timeout=args.timeout, num_threads=args.threads)
