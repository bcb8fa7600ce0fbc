"""Latency and size of candidate networks, as the tuning objective sees them.

Latency = one forward pass of the network's inference copy (what ``galsr.Emulator`` runs) on one galaxy (batch 1),
one CPU thread, in ``torch.inference_mode`` after warm-up, in milliseconds: the median of repeated passes
(``galsr.emulator.latency``, the measure every galsr latency uses). It excludes the (configuration-independent) LR
simulation and normalisation.
"""


def latency_of_model(model, n_channels, n_lr, repeats=30):
    """(latency_ms: float [ms], n_params: int) of a network on one galaxy.

    Timed on the inference copy the Emulator runs (``galsr.emulator.architectures.inference_model``: sub-pixel
    instead of transposed convolutions, matrix bicubic) with an input (1, n_channels, n_lr, n_lr) of normalised LR
    maps (models fold channels into the batch themselves in per-channel mode); ``repeats``: int, timed passes.
    """
    from galsr.emulator.architectures import inference_model, n_parameters
    from galsr.emulator.latency import network_latency_ms

    fast = inference_model(model, n_lr)
    return network_latency_ms(fast, (1, n_channels, n_lr, n_lr), threads=1, repeats=repeats), n_parameters(model)


def latency_of_emulator_file(path, n_channels, n_lr, repeats=30):
    """(latency_ms: float [ms], n_params: int) of the trained network stored in the emulator file ``path``."""
    from galsr.emulator.file_format import load_emulator

    return latency_of_model(load_emulator(path).build_model(), n_channels, n_lr, repeats=repeats)


def latency_of_config(train_config, n_channels, n_lr, repeats=30):
    """(latency_ms: float [ms], n_params: int) of an untrained network built from a training config (dict)
    (latency needs no weights)."""
    from galsr.emulator.architectures import build_model

    model = build_model(train_config.get("model", "isrcnn"), channels=n_channels, **{
        k: v for k, v in train_config.items() if k not in ("model", "channels")})
    return latency_of_model(model, n_channels, n_lr, repeats=repeats)
