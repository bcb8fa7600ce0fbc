"""The loss BOHB minimises: validation L1, optionally with a single-galaxy CPU latency penalty.

- ``"l1"``: the best validation L1 (normalised maps) reached within the budget.
- ``"l1+latency"``: ``val_l1 * (latency_ms / ref_ms) ** w`` (a MnasNet-style soft constraint: with ``w = 0.5`` a
  network twice as slow must be ``sqrt(2) = 1.41`` times more accurate to tie; the thesis's own trade-off, Table 4.1,
  0.0013 L1 at 2.5 ms against 0.0018 at 1.5 ms, is a tie at ``w = 0.64``), times ``(latency_ms / cap_ms) ** 8`` when a
  cap is given and exceeded (10 % over the cap doubles the loss). ``ref_ms`` defaults to the latency of the thesis
  iSRCNN (60/16/8) measured by the driver on its machine at start.
"""

#: Objectives understood by the worker.
OBJECTIVES = ("l1", "l1+latency")
#: Exponent of the latency-cap penalty (loss *= (latency / cap) ** CAP_EXPONENT above the cap).
CAP_EXPONENT = 8.0


def objective_loss(val_l1, latency_ms, objective="l1", ref_ms=None, weight=0.5, cap_ms=None):
    """The scalar BOHB minimises (see the module docstring for the formula).

    Args:
        val_l1: float, best validation L1 on normalised maps.
        latency_ms: float, single-galaxy CPU latency [ms].
        objective: "l1" or "l1+latency".
        ref_ms: float [ms], latency at which the penalty factor is 1 (needed for "l1+latency" without a cap).
        weight: float >= 0, exponent w of the soft penalty.
        cap_ms: float [ms] or None, latency cap; above it the loss is multiplied by (latency/cap)**8.

    Returns:
        float loss.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    loss = float(val_l1)
    if objective == "l1":
        return loss
    if ref_ms:
        loss *= (latency_ms / ref_ms) ** weight
    if cap_ms and latency_ms > cap_ms:
        loss *= (latency_ms / cap_ms) ** CAP_EXPONENT
    return loss
