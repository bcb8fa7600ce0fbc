"""Physical constants and map channel conventions shared by the whole package."""

#: Gravitational constant in kpc (km/s)^2 / Msun (docs/physics.md#units-and-constants).
G = 4.299e-6

#: Map channels, in array order: surface brightness, line-of-sight velocity, dispersion, mass-to-light.
CHANNELS = ("B", "v", "sigma", "ML")
CHANNEL_UNITS = ("Lsun/kpc2", "km/s", "km/s", "Msun/Lsun")
CHANNEL_LABELS = ("surface brightness", "line-of-sight velocity", "velocity dispersion", "mass-to-light ratio")
