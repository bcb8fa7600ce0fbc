"""``--param NAME=VALUE`` / ``--fix NAME=VALUE`` options shared by the sub-commands."""
from galsr.simulator import PARAM_NAMES


def add_param_option(parser, flag="--param", help_text=None):
    parser.add_argument(flag, action="append", default=[], metavar="NAME=VALUE",
                        help=help_text or f"set a parameter (repeatable); names: {', '.join(PARAM_NAMES)}")


def parse_param_overrides(items, flag="--param"):
    """{name: float} from ["NAME=VALUE", ...]; ValueError naming the bad item."""
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
        if name not in PARAM_NAMES:
            raise ValueError(f"{flag} {item!r}: unknown parameter {name!r}; expected one of {', '.join(PARAM_NAMES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"{flag} {item!r}: value {value!r} is not a number") from None
    return out
