"""``galsr bench``: the emulator's speed-up over the converged HR simulation and its accuracy, in one run."""


def register(subparsers):
    p = subparsers.add_parser(
        "bench", help="measure the emulator's speed-up and accuracy against the converged HR simulation",
        description="Time the emulator (LR simulation + network) and the converged HR simulation it replaces on "
                    "the same random galaxies, at batch 1 on one CPU thread, and report the emulator's errors.")
    p.add_argument("--emulator", help="emulator file (default: the shipped one)")
    p.add_argument("--n", type=int, default=64, help="number of random galaxies (default 64)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--repeats", type=int, default=3, help="timing repeats per galaxy (default 3)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(func=run)


def run(args):
    from galsr.benchmark import benchmark_emulator, format_report
    from galsr.emulator import Emulator

    emulator = Emulator.load(args.emulator) if args.emulator else Emulator.default()
    result = benchmark_emulator(emulator, n_galaxies=args.n, seed=args.seed, repeats=args.repeats,
                                threads=args.threads)
    print(format_report(result))
    if args.json:
        from galsr.simulator.fileio import write_json_atomic

        write_json_atomic(args.json, result)
    return 0
