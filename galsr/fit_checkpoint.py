"""Fit checkpoints that galsr can vouch for, and the identity of the run they continue.

dynesty's checkpoint (``checkpoint.save``) is a pickle, and unpickling runs whatever code the file names: anyone
who can put a file in an output folder could run code as the user who resumes. So galsr loads only checkpoints it
wrote itself. After every dynesty save it writes ``checkpoint.save.hmac``: an HMAC-SHA256 of the run's identity and
the checkpoint's bytes under a per-user secret key kept outside every output folder (:func:`key_file`; 32 random
bytes, created 0600 on first use). A resume checks it before dynesty unpickles anything and refuses a missing or
mismatched MAC with one line; a truncated or edited checkpoint fails the same check.

``checkpoint.json`` holds the run's identity (:func:`run_identity`: the data fitted, free and fixed parameters,
sampler settings, forward model) and the wall time and likelihood calls of all sessions up to the last checkpoint;
a resume with another identity is refused naming the item that differs, and run.json's rates add up the sessions.
"""
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
import tempfile
import time

import numpy as np

from galsr.simulator.fileio import exclusive_lock, write_json_atomic
from galsr.simulator.limits import regular_file

CHECKPOINT = "checkpoint.save"
MAC_SUFFIX = ".hmac"
RECORD = "checkpoint.json"
#: Environment variable naming the key file (tests, or a key on another disk).
KEY_ENV = "GALSR_KEY_FILE"
KEY_BYTES = 32
#: Largest checkpoint read back (bytes): far above any fit's (a few MB), far below a hostile file's.
MAX_CHECKPOINT_BYTES = 2**31


def key_file():
    """Path (str) of the per-user checkpoint key: $GALSR_KEY_FILE, else $XDG_CONFIG_HOME/galsr/checkpoint.key,
    else ~/.config/galsr/checkpoint.key."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "galsr", "checkpoint.key")


def secret_key():
    """The key (bytes), created on first use: written to a 0600 temporary file and hard-linked into place, so a
    concurrent first use never reads a half-written key."""
    path = key_file()
    if not os.path.lexists(path):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                os.link(tmp, path)
        finally:
            os.remove(tmp)
    with open(regular_file(path, "checkpoint key", max_bytes=4096), "rb") as fh:
        key = fh.read()
    if len(key) < KEY_BYTES:
        raise ValueError(f"checkpoint key {path} holds {len(key)} bytes, fewer than {KEY_BYTES}; remove it and "
                         f"galsr makes a new one (checkpoints signed with it can then no longer be resumed)")
    return key


def sha256_file(path):
    """sha256 (hex str) of a regular file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(regular_file(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_arrays(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def run_identity(galaxy, model, prior, settings):
    """What a resumed fit must share with its checkpoint (dict of plain JSON values).

    data_sha256: sha256 of the maps, errors, mask, grid and redshift fitted (so another input file with other data
    differs); free / fixed: names and values [parameter units]; nlive, bound, sample, walks, dlogz, seed: the
    sampler settings; forward_model: name, grid and the sha256 of the emulator file (or of its weights and error
    maps when it has no file)."""
    data = _sha256_arrays(galaxy.maps, galaxy.errors, galaxy.mask,
                          np.frombuffer(json.dumps([galaxy.grid.to_dict(), float(galaxy.redshift)],
                                                   sort_keys=True).encode(), dtype=np.uint8))
    emulator = getattr(model, "emulator", None)
    checksum = None
    if emulator is not None:
        path = getattr(emulator, "path", None)
        checksum = sha256_file(path) if path else _sha256_arrays(
            emulator.error_maps, *(t.detach().numpy() for t in emulator._model.state_dict().values()))
    identity = {"data_sha256": data, "free": list(prior.free_names),
                "fixed": {k: float(v) for k, v in prior.fixed.items()},
                **{k: settings[k] for k in ("nlive", "bound", "sample", "walks", "dlogz", "seed")},
                "forward_model": {"name": model.name, "grid": model.grid.to_dict(), "sha256": checksum}}
    return json.loads(json.dumps(identity))  # plain JSON, compared with what checkpoint.json reads back


_ITEM_TEXT = {"data_sha256": "the galaxy data (another input file?)", "free": "the free parameters",
              "fixed": "the fixed parameters (--fix)", "forward_model": "the forward model (--forward/--emulator)"}


def _first(items, k=3):
    """The first ``k`` of ``items`` (list of str) joined, with how many more: keeps a refusal one readable line."""
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def identity_differences(old, new):
    """Human-readable items (list of str) in which identity ``new`` differs from the checkpoint's ``old``; for
    the free and fixed parameters only the names that differ."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        what = _ITEM_TEXT.get(key, key)
        if key in ("data_sha256", "forward_model"):
            out.append(f"{what} differ from the checkpoint's")
        elif isinstance(a, dict) and isinstance(b, dict):
            out.append(f"{what}: " + _first([f"{k} {a.get(k, 'free')} in the checkpoint, {b.get(k, 'free')} now"
                                             for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]))
        elif isinstance(a, list) and isinstance(b, list):
            out.append(f"{what}: {len(a)} in the checkpoint, {len(b)} now (only in the checkpoint: "
                       f"{_first([n for n in a if n not in b]) or '-'}; only now: "
                       f"{_first([n for n in b if n not in a]) or '-'})")
        else:
            out.append(f"{what}: checkpoint {a!r}, this run {b!r}")
    return out


class FitCheckpoint:
    """The checkpoint of one fit in ``directory`` (or none when ``directory`` is None), see the module docstring.

    Attributes: path (str or None, the dynesty checkpoint), identity (dict), previous_wall_s (float [s], wall time
    of the earlier sessions up to their last checkpoint), sessions (int, this one included)."""

    def __init__(self, directory, identity):
        self.directory = None if directory is None else os.fspath(directory)
        self.identity = identity
        self.path = None if directory is None else os.path.join(self.directory, CHECKPOINT)
        self.previous_wall_s, self.sessions = 0.0, 1
        self._t0 = time.time()
        self._macs = []

    # ------------------------------------------------------------------ files
    @property
    def mac_path(self):
        return self.path + MAC_SUFFIX

    @property
    def record_path(self):
        return os.path.join(self.directory, RECORD)

    def _mac(self, data):
        identity = json.dumps(self.identity, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(secret_key(), identity + b"\n" + data, hashlib.sha256).hexdigest()

    def _read_json(self, path, what):
        try:
            with open(regular_file(path, what, max_bytes=1 << 20)) as fh:
                return json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} {path} is not valid JSON ({exc})") from None

    def wall_time_s(self):
        """Wall time [s] of the whole run: earlier sessions (to their last checkpoint) plus this one so far."""
        return self.previous_wall_s + (time.time() - self._t0)

    # ------------------------------------------------------------------ start / resume
    def start(self):
        """A fresh run: remove a previous run's checkpoint files (they no longer match) and write the record."""
        for path in (self.path, self.mac_path, self.path + ".new"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        self._write_record(0)

    def check_resumable(self):
        """ValueError unless the directory holds a checkpoint of this run's identity with its record and MAC."""
        if not os.path.lexists(self.path):
            raise ValueError(f"resume: no checkpoint {self.path} to continue from")
        record = self._read_json(self.record_path, "resume: run record") if os.path.lexists(self.record_path) \
            else None
        if not isinstance(record, dict) or not isinstance(record.get("identity"), dict):
            raise ValueError(f"resume: {self.path} has no run record {self.record_path}; galsr cannot vouch for it "
                             f"and will not load it (start again with --overwrite)")
        differ = identity_differences(record["identity"], self.identity)
        if differ:
            raise ValueError(f"resume: this run differs from the checkpoint in {self.directory}: "
                             + "; ".join(differ) + " (resume with the same input and settings, or --overwrite)")
        wall, sessions = record.get("wall_time_s"), record.get("sessions")
        if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not math.isfinite(wall) or wall < 0 \
                or isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1:
            raise ValueError(f"resume: run record {self.record_path} has no valid wall_time_s and sessions")
        self.previous_wall_s, self.sessions = float(wall), sessions + 1

    def verified_bytes(self):
        """The checkpoint's bytes, read once and checked against its MAC (ValueError naming the file otherwise)."""
        with open(regular_file(self.path, "checkpoint", MAX_CHECKPOINT_BYTES), "rb") as fh:
            data = fh.read()
        if not os.path.lexists(self.mac_path):
            raise ValueError(f"resume: {self.path} has no MAC {self.mac_path}; galsr cannot vouch for it and will "
                             f"not load it (start again with --overwrite)")
        stored = self._read_json(self.mac_path, "checkpoint MAC")
        macs = stored.get("macs") if isinstance(stored, dict) else None
        mac = self._mac(data)
        if not isinstance(macs, list) or not any(isinstance(m, str) and hmac.compare_digest(m, mac) for m in macs):
            raise ValueError(f"resume: {self.path} does not match its MAC in {self.mac_path} (truncated, modified, "
                             f"or signed with another key than {key_file()}); refusing to load it")
        self._macs = [mac]
        return data

    def restore(self, pool=None):
        """The dynesty sampler of the verified checkpoint, signing its later saves. The verified bytes are restored
        from a private copy, so the file cannot be swapped between the check and the load."""
        import dynesty

        data = self.verified_bytes()
        with tempfile.TemporaryDirectory(prefix="galsr-resume-") as tmp:  # mode 0700
            copy = os.path.join(tmp, CHECKPOINT)
            with open(copy, "wb") as fh:
                fh.write(data)
            try:
                sampler = dynesty.NestedSampler.restore(copy, pool=pool)
            except Exception as exc:  # noqa: BLE001 - a checkpoint of another dynesty version, ...
                raise ValueError(f"resume: cannot restore {self.path} ({type(exc).__name__}: {exc})") from None
        return self.attach(sampler)

    # ------------------------------------------------------------------ saving
    def attach(self, sampler):
        """Make dynesty's checkpoint saves of ``sampler`` signed ones (an instance attribute that is taken off while
        the sampler is pickled); starts this session's clock. Returns ``sampler``."""
        self._t0 = time.time()
        if self.path is not None:
            sampler.save = _SignedSave(self, sampler)
        return sampler

    def save(self, sampler, fname):
        """dynesty's save to ``fname.new``, its MAC added to the sidecar (which keeps the previous MAC too), then
        renamed over ``fname``: a kill at any moment leaves a checkpoint that one of the MACs vouches for."""
        new = fname + ".new"
        type(sampler).save(sampler, new)
        with open(new, "rb") as fh:
            data = fh.read()
            os.fsync(fh.fileno())
        mac = self._mac(data)
        write_json_atomic(self.mac_path, {"algorithm": "HMAC-SHA256(identity, checkpoint)",
                                          "macs": [mac] + self._macs[:1]})
        os.replace(new, fname)
        self._macs = [mac]
        self._write_record(int(sampler.ncall))

    def _write_record(self, n_calls):
        write_json_atomic(self.record_path, {"identity": self.identity, "wall_time_s": self.wall_time_s(),
                                             "n_likelihood_calls": n_calls, "sessions": self.sessions})


class _SignedSave:
    """``sampler.save`` replacement: FitCheckpoint.save with this attribute removed while dynesty pickles."""

    def __init__(self, checkpoint, sampler):
        self.checkpoint, self.sampler = checkpoint, sampler

    def __call__(self, fname):
        del self.sampler.__dict__["save"]
        try:
            self.checkpoint.save(self.sampler, fname)
        finally:
            self.sampler.save = self


@contextlib.contextmanager
def fit_checkpoint(directory, identity, resume=False):
    """The :class:`FitCheckpoint` of a fit in ``directory`` (None: no checkpoint), holding the directory's lock for
    the block; resume checks it (ValueError naming what differs), otherwise a previous run's checkpoint is removed."""
    if directory is None:
        if resume:
            raise ValueError("resume needs the checkpoint_dir of the run to continue")
        yield FitCheckpoint(None, identity)
        return
    directory = os.fspath(directory)
    if resume and not os.path.isdir(directory):
        raise ValueError(f"resume: no checkpoint {os.path.join(directory, CHECKPOINT)} to continue from")
    os.makedirs(directory, exist_ok=True)
    with exclusive_lock(directory):
        ckpt = FitCheckpoint(directory, identity)
        if resume:
            ckpt.check_resumable()
        else:
            ckpt.start()
        yield ckpt
