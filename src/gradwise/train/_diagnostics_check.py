"""The epoch check of :class:`~gradwise.train.GradientDiagnostics`: vanishing and exploding layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gradwise.errors import ConfigError


def check_number(owner: str, field: str, value: Any, low: float, high: float | None = None) -> float:
    """``value`` as a float in ``(low, high)`` (``(low, inf)`` without ``high``), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
        raise ConfigError(f"{owner}: {field} must be a number > {low}, got {value!r}")
    if high is not None and not value < high:
        raise ConfigError(f"{owner}: {field} must be a number in ({low}, {high}), got {value!r}")
    return float(value)


def gradient_events(
    layer_names: Sequence[str],
    grad_norm: dict[str, float],
    vanish: float,
    explode: float,
    flagged: dict[str, str],
) -> list[dict[str, Any]]:
    """Events for layers whose norm leaves [vanish, explode] x the largest norm after them.

    Gradients flow from the loss backwards, so a layer is compared with the
    layers between it and the output: vanishing means the gradient shrank
    on its way back, exploding that it grew. A vanishing chain (sigmoid)
    then flags its first layers, not its last one, which is far above the
    median but only because the others vanished. The last layer has no
    reference and is flagged only when its norm is not finite. ``flagged``
    (layer -> kind) is updated in place: a layer is reported again only
    after it recovers.

    >>> gradient_events(["a", "b"], {"a": 1e-5, "b": 1.0}, 1e-3, 1e3, {})[0]["kind"]
    'vanishing_gradient'
    """
    events: list[dict[str, Any]] = []
    names = [n for n in layer_names if n in grad_norm]
    if all(math.isnan(grad_norm[n]) for n in names):
        return events  # no step was sampled this epoch
    for i, name in enumerate(names):
        g = grad_norm[name]
        after = [grad_norm[n] for n in names[i + 1 :] if math.isfinite(grad_norm[n])]
        ref = max(after, default=float("nan"))
        ratio = g / ref if ref > 0 else float("nan")
        kind = None
        if not math.isfinite(g) or ratio > explode:
            kind = "exploding_gradient"
        elif ratio < vanish:
            kind = "vanishing_gradient"
        if kind is None:
            flagged.pop(name, None)
            continue
        if flagged.get(name) == kind:
            continue  # already reported; report again only after it recovers
        flagged[name] = kind
        events.append({
            "kind": kind,
            "message": f"layer {name}: gradient norm {g:.3g} is {ratio:.3g} × the largest "
            f"of the layers after it ({ref:.3g}): {kind.split('_')[0]}",
            "layer": name,
            "grad_norm": g,
            "ratio": ratio,
        })  # fmt: skip
    return events
