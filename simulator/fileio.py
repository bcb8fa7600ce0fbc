"""Atomic file writing, the one definition used by every writer in galsr: a file is written under a temporary
name in its own directory, flushed to disk and renamed over its target in one step, so an interrupted write never
leaves a partial file and never destroys the previous one."""
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
