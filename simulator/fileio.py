"""Atomic file writing, the one definition used by every writer in galsr: a file is written under a temporary
name in its own directory, flushed to disk and renamed over its target in one step, so an interrupted write never
leaves a partial file and never destroys the previous one. And the one output lock (:func:`exclusive_lock`) that
every long job (generate, train, fit, tune) holds on its output while it runs."""
import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=None, mode=None):
    """Yield a temporary path next to ``path``; on success it is fsynced and replaces ``path`` in one rename, on
    error it is removed. ``suffix`` defaults to the extension of ``path`` (some writers infer the format from it);
    ``mode`` (int) defaults to the permissions a plain ``open()`` would give."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path) + "-",
                               suffix=os.path.splitext(path)[1] if suffix is None else suffix)
    os.close(fd)
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # mkstemp makes 0600
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text):
    """Write ``text`` (str) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(text)
    return path


def write_json_atomic(path, obj, indent=2, sort_keys=False):
    """JSON-dump ``obj`` (plain Python values) to ``path`` atomically, ending in a newline; returns ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def save_figure(fig, path, dpi=110):
    """Save a matplotlib figure to ``path`` atomically (format from the extension, PNG without one) and close it;
    returns ``path``."""
    import matplotlib.pyplot as plt

    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with atomic_path(path, suffix="." + ext) as tmp:
        fig.savefig(tmp, dpi=dpi, format=ext)
    plt.close(fig)
    return path


#: Per-process locks already held: {absolute lock path: [fd, depth]} (a job's layers may each lock the same output).
_HELD = {}


def lock_path(output):
    """The lock file of ``output`` (str): ``<output>.lock`` beside it (a folder's lock sits next to the folder, so
    an output folder stays empty until the job writes to it)."""
    return os.path.abspath(os.fspath(output)).rstrip(os.sep) + ".lock"


@contextlib.contextmanager
def exclusive_lock(output):
    """Hold an exclusive lock on ``output`` (file or folder path) while the block runs, so that no two galsr jobs
    write the same output at once; ValueError naming ``output`` when another process holds it (never waits). The
    folder that holds ``output`` is created if missing.

    A non-blocking ``fcntl.flock`` on :func:`lock_path`; the file is removed on release. Re-entrant within a
    process. After locking, the lock file is checked to still be the one on disk (a releasing process may just
    have removed it), else the lock is taken again on the new file."""
    import fcntl

    path = lock_path(output)
    os.makedirs(os.path.dirname(path), exist_ok=True)  # the folder the job is about to write in
    if path in _HELD:
        _HELD[path][1] += 1
        try:
            yield path
        finally:
            _HELD[path][1] -= 1
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(f"{os.fspath(output)} is in use: another galsr process holds its lock ({path}); "
                             f"wait for it to finish") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _HELD[path] = [fd, 1]
    try:
        yield path
    finally:
        del _HELD[path]
        try:
            os.remove(path)  # while still locked, so a waiting process re-checks and locks a fresh file
        finally:
            os.close(fd)
