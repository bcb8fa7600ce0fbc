"""Limits on input checked before anything is read or allocated: only regular files of bounded size are opened
(a device or FIFO would be read forever), counts of workers and threads are whole and bounded by the machine.

Notes that galsr gives without refusing (a capped worker count) are ``GalsrNote`` warnings: the library warns,
the CLI prints them as one line.
"""
import numbers
import os
import stat
import warnings


class GalsrNote(UserWarning):
    """A note about how galsr adjusted a request (printed by the CLI as ``galsr CMD: note: ...``)."""


def regular_file(path, what="file", max_bytes=None):
    """Return ``path`` (str) after checking that it names an existing regular file of at most ``max_bytes`` bytes
    (int or None = any size); ValueError naming ``what`` and the path otherwise. ``os.stat`` never opens the file,
    so a FIFO or device is refused without blocking."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{what} {path} cannot be examined ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
        raise ValueError(f"{what} {path} is {kind}; expected a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise ValueError(f"{what} {path} holds {st.st_size:,} bytes, more than the {max_bytes:,} accepted")
    return path


def whole_number(value, name, minimum=1, maximum=None):
    """``value`` as int after checking it is a whole number (not a bool) in [minimum, maximum]; ValueError
    naming ``name`` otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or value < minimum or (maximum is not None and value > maximum):
        top = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be an integer >= {minimum}{top}, got {value!r}")
    return int(value)


def cap_workers(workers, name="workers"):
    """``workers`` (int >= 1) capped at the machine's cores (os.cpu_count()): more processes than cores only add
    memory (each worker holds its own model) and no speed. Warns a :class:`GalsrNote` when capped; returns int."""
    workers = whole_number(workers, name)
    cores = os.cpu_count() or 1
    if workers > cores:
        warnings.warn(f"{name} {workers} capped at this machine's {cores} cores", GalsrNote, stacklevel=2)
        return cores
    return workers
