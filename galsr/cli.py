"""The ``galsr`` command line: one thin sub-command module per job in ``galsr.commands``.

Each module defines ``register(subparsers)`` (adds its parser and sets ``func``) and keeps heavy imports inside
its run function, so ``galsr --help`` stays fast. Bad input (ValueError, OSError) exits 2 with one line; a
note from the library (galsr.simulator.limits.GalsrNote, e.g. a capped worker count) is printed as one line.
"""
import argparse
import importlib
import sys

COMMANDS = ("simulate", "mock", "generate", "train", "evaluate", "calibrate", "fit", "tune",
            "tune_worker", "bench")


def build_parser():
    from galsr import __version__

    parser = argparse.ArgumentParser(prog="galsr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"galsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"galsr.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"galsr.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import warnings

    from galsr.simulator.limits import GalsrNote

    def show(message, category, *rest, **kw):
        if issubclass(category, GalsrNote):
            print(f"galsr {args.command}: note: {message}", file=sys.stderr, flush=True)
        else:
            default_show(message, category, *rest, **kw)

    default_show = warnings.showwarning
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"galsr {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"galsr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
