"""The data transform between physical maps and the network's normalised space (thesis section 6.1).

Per channel: brightness B [Lsun/kpc^2] -> log10 B first (its dynamic range spans decades; optionally also
sigma and M/L, see ``log_channels``), then a min-max
normalisation with dataset-wide bounds taken over LR and HR maps together (one transform for input and target, so
the bicubic up-sampling of a normalised LR map is already close to the normalised HR map). Velocity is odd under
a rotation by pi, so its bounds are symmetric, [-a, a] with a = max |v|: v = 0 maps to 0.5.

The transform is one JSON-able object saved inside the emulator file and inverted on the network's output.
"""
import json

import numpy as np
import torch

LN10 = float(np.log(10.0))
#: Default channel roles (simulator.CHANNELS order: B, v, sigma, M/L).
DEFAULT_CHANNELS = ("B", "v", "sigma", "ML")
LOG_CHANNELS = ("B",)
SYMMETRIC_CHANNELS = ("v",)


class MapTransform:
    """Per-channel map normalisation ``y = (f(x) - lo) / (hi - lo)`` with f = log10 for log channels.

    Args:
        lo, hi: sequences (C,) of bounds in transformed units (dex for log channels, physical otherwise), hi > lo.
        channels: tuple of C channel names.
        log_channels: names of channels normalised in log10.
    """

    def __init__(self, lo, hi, channels=DEFAULT_CHANNELS, log_channels=LOG_CHANNELS):
        self.channels = tuple(str(c) for c in channels)
        self.lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        self.hi = np.asarray(hi, dtype=np.float64).reshape(-1)
        self.log_channels = tuple(str(c) for c in log_channels)
        n = len(self.channels)
        if self.lo.shape != (n,) or self.hi.shape != (n,):
            raise ValueError(f"MapTransform: lo/hi must have one value per channel ({n}), got shapes "
                             f"{self.lo.shape} and {self.hi.shape}")
        if not (np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)) and np.all(self.hi > self.lo)):
            raise ValueError(f"MapTransform: bounds must be finite with hi > lo, got lo={self.lo.tolist()} "
                             f"hi={self.hi.tolist()}")
        unknown = set(self.log_channels) - set(self.channels)
        if unknown:
            raise ValueError(f"MapTransform: log channels {sorted(unknown)} not in channels {self.channels}")
        self.is_log = np.array([c in self.log_channels for c in self.channels])
        self.scale = self.hi - self.lo

    @property
    def n_channels(self):
        return len(self.channels)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_stats(cls, stats, channels=DEFAULT_CHANNELS, log_channels=LOG_CHANNELS,
                   symmetric_channels=SYMMETRIC_CHANNELS):
        """Bounds from a dataset's ``/stats`` (dict {"lr": {...}, "hr": {...}} with per-channel "min", "max" (C,)
        in physical units and scalars "log10_B_min", "log10_B_max"), taken over LR and HR together.

        Log channels use the log10 bounds; symmetric channels use [-a, a], a = max(|min|, |max|).
        """
        lo, hi = [], []
        groups = [stats[k] for k in ("lr", "hr") if k in stats]
        if not groups:
            raise ValueError("MapTransform.from_stats: stats has neither 'lr' nor 'hr'")
        for i, name in enumerate(channels):
            if name in log_channels:
                key = f"log10_{name}"
                if all(f"{key}_min" in g and f"{key}_max" in g for g in groups):
                    a = min(float(g[f"{key}_min"]) for g in groups)
                    b = max(float(g[f"{key}_max"]) for g in groups)
                else:  # log10 is monotonic: bounds from the physical min/max
                    pmin = min(float(np.asarray(g["min"])[i]) for g in groups)
                    pmax = max(float(np.asarray(g["max"])[i]) for g in groups)
                    if not pmin > 0:
                        raise ValueError(f"MapTransform.from_stats: channel {name!r} has min {pmin:g} <= 0 and "
                                         f"cannot be normalised in log10; remove it from log_channels")
                    a, b = np.log10(pmin), np.log10(pmax)
            else:
                a = min(float(np.asarray(g["min"])[i]) for g in groups)
                b = max(float(np.asarray(g["max"])[i]) for g in groups)
                if name in symmetric_channels:
                    a, b = -max(abs(a), abs(b)), max(abs(a), abs(b))
            if not b > a:  # a constant channel: any unit interval around it
                a, b = a - 0.5, a + 0.5
            lo.append(a)
            hi.append(b)
        return cls(lo, hi, channels, log_channels)

    def to_dict(self):
        """Plain-JSON description."""
        return {"kind": "log10-minmax", "channels": list(self.channels), "log_channels": list(self.log_channels),
                "lo": self.lo.tolist(), "hi": self.hi.tolist()}

    @classmethod
    def from_dict(cls, d):
        """Inverse of ``to_dict``; ValueError for anything else."""
        if not isinstance(d, dict) or d.get("kind") != "log10-minmax":
            raise ValueError(f"MapTransform.from_dict: expected a dict with kind 'log10-minmax', got {d!r:.200}")
        try:
            return cls(d["lo"], d["hi"], d["channels"], d["log_channels"])
        except KeyError as exc:
            raise ValueError(f"MapTransform.from_dict: missing key {exc.args[0]!r}") from None

    def __eq__(self, other):
        return isinstance(other, MapTransform) and json.dumps(self.to_dict()) == json.dumps(other.to_dict())

    def __repr__(self):
        return f"MapTransform({self.to_dict()})"

    # ------------------------------------------------------------------ application
    def _broadcast(self, maps, values):
        """``values`` (C,) shaped to broadcast against maps (..., C, n, n), as maps' array type and dtype."""
        if maps.ndim < 3 or maps.shape[-3] != self.n_channels:
            raise ValueError(f"MapTransform: expected maps (..., {self.n_channels}, n, n), got shape "
                             f"{tuple(maps.shape)}")
        if isinstance(maps, torch.Tensor):
            return torch.as_tensor(values, dtype=maps.dtype, device=maps.device).reshape(-1, 1, 1)
        return np.asarray(values, dtype=maps.dtype).reshape(-1, 1, 1)

    def _log_mask(self, maps):
        return self._broadcast(maps, self.is_log.astype(np.float64)) > 0.5

    def forward(self, maps):
        """Physical maps (..., C, n, n) (numpy or torch, float) -> normalised maps of the same type and dtype.

        Brightness must be > 0 (log10); ValueError otherwise."""
        maps = _as_float(maps)
        lo, scale = self._broadcast(maps, self.lo), self._broadcast(maps, self.scale)
        if self.is_log.any():
            maps = _apply_log(maps, self.is_log, self.channels)
        return (maps - lo) / scale

    def inverse(self, maps):
        """Normalised maps (..., C, n, n) -> physical maps (numpy or torch, same dtype)."""
        maps = _as_float(maps)
        out = maps * self._broadcast(maps, self.scale) + self._broadcast(maps, self.lo)
        if self.is_log.any():
            idx = np.flatnonzero(self.is_log)
            if isinstance(out, torch.Tensor):
                out = out.clone()
                out[..., idx, :, :] = torch.pow(10.0, out[..., idx, :, :])
            else:
                out = out.copy() if out is maps else out
                out[..., idx, :, :] = np.power(10.0, out[..., idx, :, :])
        return out

    def _f32(self):
        """(scale (C, 1, 1), lo (C, 1, 1) as float32, indices of the log channels), made once."""
        cache = getattr(self, "_f32_cache", None)
        if cache is None:
            cache = (self.scale.astype(np.float32).reshape(-1, 1, 1), self.lo.astype(np.float32).reshape(-1, 1, 1),
                     np.flatnonzero(self.is_log))
            self._f32_cache = cache
        return cache

    def inverse_(self, y):
        """In-place inverse of normalised float32 maps (N, C, n, n), a contiguous CPU torch tensor (e.g. the
        network's output) or numpy array, overwritten and returned as a numpy view: the emulator's hot path, where
        float32's 6e-8 relative precision is far below its errors. Works on the numpy view of the tensor (numpy's
        per-call overhead on a few small arrays is a fraction of torch's)."""
        a = y.numpy() if isinstance(y, torch.Tensor) else y
        if a.ndim != 4 or a.shape[1] != self.n_channels:
            raise ValueError(f"MapTransform: expected maps (N, {self.n_channels}, n, n), got shape {tuple(a.shape)}")
        scale, lo, log_idx = self._f32()
        a *= scale
        a += lo
        for c in log_idx:
            sub = a[:, c]
            sub *= np.float32(LN10)
            np.exp(sub, out=sub)
        return a

    __call__ = forward

    def physical_error_scale(self):
        """(C,) factor turning a normalised error into dex (log channels) or physical units (others)."""
        return self.scale.copy()


def _as_float(maps):
    if isinstance(maps, torch.Tensor):
        return maps if maps.is_floating_point() else maps.double()
    maps = np.asarray(maps)
    return maps if np.issubdtype(maps.dtype, np.floating) else maps.astype(np.float64)


def _apply_log(maps, is_log, channels):
    """log10 of the log channels (copy); ValueError naming the channel when a value is <= 0."""
    idx = np.flatnonzero(is_log)
    if isinstance(maps, torch.Tensor):
        sub = maps[..., idx, :, :]
        if not bool(torch.all(sub > 0)):
            raise ValueError(f"MapTransform: channel(s) {[channels[i] for i in idx]} must be > 0 for log10")
        out = maps.clone()
        out[..., idx, :, :] = torch.log10(sub)
        return out
    sub = maps[..., idx, :, :]
    if not np.all(sub > 0):
        raise ValueError(f"MapTransform: channel(s) {[channels[i] for i in idx]} must be > 0 for log10")
    out = maps.copy()
    out[..., idx, :, :] = np.log10(sub)
    return out
