"""The map transform: log10 + min-max per channel, symmetric velocity, round trip, JSON, errors."""
import numpy as np
import pytest
import torch

from galsr.emulator.transform import MapTransform

STATS = {"lr": {"min": np.array([1e3, -150.0, 20.0, 0.5]), "max": np.array([1e9, 120.0, 300.0, 8.0]),
                "log10_B_min": 3.0, "log10_B_max": 9.0},
         "hr": {"min": np.array([5e2, -200.0, 10.0, 0.4]), "max": np.array([2e9, 180.0, 350.0, 9.0]),
                "log10_B_min": np.log10(5e2), "log10_B_max": np.log10(2e9)}}


def _maps(rng, n=3, size=6):
    b = 10 ** rng.uniform(3, 9, (n, 1, size, size))
    v = rng.uniform(-150, 150, (n, 1, size, size))
    s = rng.uniform(20, 300, (n, 1, size, size))
    ml = rng.uniform(0.5, 8, (n, 1, size, size))
    return np.concatenate([b, v, s, ml], axis=1)


@pytest.mark.parametrize("log_channels", [("B",), ("B", "sigma", "ML")])
def test_round_trip_numpy_and_torch(log_channels):
    tf = MapTransform.from_stats(STATS, log_channels=log_channels)
    maps = _maps(np.random.default_rng(0))
    y = tf.forward(maps)
    assert y.shape == maps.shape and y.min() >= 0 and y.max() <= 1
    np.testing.assert_allclose(tf.inverse(y), maps, rtol=1e-12)
    t = torch.from_numpy(maps)
    torch.testing.assert_close(tf.forward(t), torch.from_numpy(y))
    torch.testing.assert_close(tf.inverse(tf.forward(t)), t, rtol=1e-12, atol=0)
    # float32 stays float32
    assert tf.forward(maps.astype(np.float32)).dtype == np.float32
    assert tf.forward(t.float()).dtype == torch.float32


def test_bounds_from_lr_and_hr_and_symmetric_velocity():
    assert MapTransform.from_stats(STATS).lo[2] == 10.0  # default: only brightness in log10
    tf = MapTransform.from_stats(STATS, log_channels=("B", "sigma", "ML"))
    assert tf.lo[0] == pytest.approx(np.log10(5e2)) and tf.hi[0] == pytest.approx(np.log10(2e9))
    assert (tf.lo[1], tf.hi[1]) == (-200.0, 200.0)
    assert tf.lo[2] == pytest.approx(np.log10(10.0)) and tf.hi[3] == pytest.approx(np.log10(9.0))
    v = np.zeros((1, 4, 2, 2)) + np.array([1e5, 0.0, 50.0, 1.0])[None, :, None, None]
    assert tf.forward(v)[0, 1, 0, 0] == 0.5  # v = 0 -> 0.5: odd maps stay odd about 0.5


def test_json_round_trip_and_errors():
    tf = MapTransform.from_stats(STATS)
    again = MapTransform.from_dict(tf.to_dict())
    assert again == tf
    with pytest.raises(ValueError, match="log10-minmax"):
        MapTransform.from_dict({"kind": "zscore"})
    with pytest.raises(ValueError, match="missing key"):
        MapTransform.from_dict({"kind": "log10-minmax", "lo": [0] * 4})
    with pytest.raises(ValueError, match="hi > lo"):
        MapTransform([0, 0, 0, 0], [1, 1, 0, 1])
    with pytest.raises(ValueError, match="must be > 0 for log10"):
        tf.forward(np.zeros((1, 4, 2, 2)))
    with pytest.raises(ValueError, match=r"expected maps \(\.\.\., 4, n, n\)"):
        tf.forward(np.ones((1, 3, 2, 2)))
    bad = {"lr": dict(STATS["lr"], min=np.array([1e3, -1, 0.0, 0.5]))}
    with pytest.raises(ValueError, match="'sigma' has min 0 <= 0"):
        MapTransform.from_stats(bad, log_channels=("B", "sigma"))
