"""Sampler settings: the measured defaults scale with the free parameters; a quick look is labelled as one."""
from galsr.fit_results import format_table
from galsr.fitting import DEFAULTS, QUICK, resolve_settings


def test_defaults_scale_nlive_with_the_free_parameters():
    s18 = resolve_settings(ndim=18)
    assert s18["sample"] == DEFAULTS["sample"] == "rslice" and s18["nlive"] == 90 and not s18["quick"]
    assert resolve_settings(ndim=6)["nlive"] == DEFAULTS["nlive_min"]
    assert resolve_settings(nlive=200, ndim=18)["nlive"] == 200


def test_quick_look_uses_the_quick_settings_and_says_so():
    s = resolve_settings(quick=True, ndim=18)
    assert s["quick"] and all(s[k] == v for k, v in QUICK.items())
    summary = {"parameters": {}, "logz": -1.0, "logzerr": 0.1, "forward_model": "emulator", "quick_look": True,
               "posterior": "emulator posterior (no exact finish)"}
    text = format_table(summary)
    assert text.startswith("QUICK LOOK") and "posterior: emulator posterior (no exact finish)" in text
