"""Gradient diagnostics: per-layer gradient norms, update ratios, dead and saturated units.

Why a network does not learn is usually visible one layer at a time: the
first layers of a deep sigmoid net get gradients a million times smaller than
the last (vanishing), a bad learning rate makes one layer's updates as large as
its weights, ReLU units whose input is negative for every example never
recover (dead), sigmoid/tanh units pinned at their flat ends pass no gradient
(saturated). :class:`GradientDiagnostics` measures all four while training runs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gradwise.errors import ConfigError
from gradwise.train._diagnostics_check import check_number as _number
from gradwise.train._diagnostics_check import gradient_events
from gradwise.train._diagnostics_report import measure, plot_all, report_section
from gradwise.train._io import write_text
from gradwise.train._state import Callback, Control, TrainState

# Activations watched, and the derivative of each written through its output y.
# Normalised by its maximum (sigmoid' peaks at 1/4) so one threshold means the
# same depth of saturation for both: d = 4y(1-y) for sigmoid, 1-y^2 for tanh.
_SATURATING = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}


class GradientDiagnostics(Callback):
    """Per-layer gradient norms, update/weight ratios, dead ReLU and saturated units.

    On every ``every``-th optimizer step (a *sampled* step):

    * gradient norm of layer l: ``||g_l|| = sqrt(sum_p ||grad p||^2)`` over the
      layer's own parameters (weight and bias), read in ``on_before_step``, so
      with ``grad_accum`` it is the full step's gradient, before clipping;
    * update/weight ratio: ``||θ_l(after) − θ_l(before)|| / ||θ_l(before)||``, the
      step the optimizer actually took (around 1e-3 is the usual healthy range).

    On every training batch (forward hooks, so eval passes do not count):

    * dead ReLU fraction (per epoch): the fraction of units of an ``nn.ReLU``
      whose output was 0 for every training example of the epoch (a unit is a
      feature, or a channel of a convolution);
    * saturated fraction (per epoch): over the examples and units of an
      ``nn.Sigmoid`` or ``nn.Tanh``, the fraction whose derivative, normalised
      to 1 at its peak (``4y(1−y)`` for sigmoid, ``1−y²`` for tanh), is below
      ``saturation``.

    At each epoch end the epoch-mean gradient norm of each layer is compared
    with the largest one among the layers after it (nearer the loss, where the
    gradient comes from): a ratio below ``vanish`` or above ``explode``, or a
    non-finite norm, emits a ``"vanishing_gradient"`` or
    ``"exploding_gradient"`` event record (once when a layer enters that
    state), which :class:`MetricsLogger` writes to ``metrics.jsonl``.

    Hooks are registered when ``fit`` starts and removed when it ends: a model
    trained without this callback pays nothing. With the default ``every=10``
    the cost is about 5-7% of a step on the digits MLP (17-25% with ``every=1``;
    see ``docs/diagnostics.md``). A layer is a module with a ``weight`` of 2 or
    more dimensions (``Linear``, ``Conv*``), in module order taken as input to
    output, unless ``layers`` names them (in that order). Gradients are read
    from ``param.grad`` rather than by backward hooks so that accumulated
    micro-batches count as one step.

    Args:
        every: measure gradients and updates on every ``every``-th optimizer step.
        layers: module names to watch (``"block0.linear"``), input to output; None: auto.
        saturation: threshold on the normalised derivative, in (0, 1).
        vanish, explode: bounds on a layer's gradient norm divided by the
            largest one after it; outside them a warning is emitted.

    Attributes:
        layer_names, activation_names: what is watched, input to output.
        epochs: one record per epoch: ``{"epoch", "grad_norm": {layer: mean},
            "update_ratio": {layer: mean}, "dead": {act: fraction},
            "saturated": {act: fraction}}``.
        steps, step_grad_norms, step_update_ratios: the per-sampled-step series.
        warnings: the event records emitted.

    Example:
        >>> import torch
        >>> from gradwise.nn import MLP
        >>> from gradwise.train import Trainer
        >>> net = MLP(4, [8, 8], 2, activation="sigmoid")
        >>> diag = GradientDiagnostics(every=1)
        >>> t = Trainer(net, torch.optim.SGD(net.parameters(), lr=0.1),
        ...             torch.nn.CrossEntropyLoss(), epochs=2, callbacks=[diag], seed=0)
        >>> _ = t.fit((torch.randn(64, 4), torch.randint(0, 2, (64,))))
        >>> diag.layer_names, len(diag.epochs)
        (['block0.linear', 'block1.linear', 'head'], 2)
    """

    def __init__(
        self,
        every: int = 10,
        layers: list[str] | None = None,
        saturation: float = 0.05,
        vanish: float = 1e-3,
        explode: float = 1e3,
    ) -> None:
        owner = "GradientDiagnostics"
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"{owner}: every must be an int >= 1, got {every!r}")
        if layers is not None and (
            isinstance(layers, str) or not all(isinstance(n, str) for n in layers)
        ):
            raise ConfigError(f"{owner}: layers must be a list of module names, got {layers!r}")
        self.every = every
        self.wanted = None if layers is None else list(layers)
        self.saturation = _number(owner, "saturation", saturation, 0.0, 1.0)
        self.vanish = _number(owner, "vanish", vanish, 0.0)
        self.explode = _number(owner, "explode", explode, 0.0)
        if self.vanish >= self.explode:
            raise ConfigError(f"{owner}: vanish ({vanish}) must be below explode ({explode})")
        self.layer_names: list[str] = []
        self.activation_names: list[str] = []
        self.activation_kinds: dict[str, str] = {}
        self.epochs: list[dict[str, Any]] = []
        self.steps: list[int] = []
        self.step_grad_norms: list[list[float]] = []
        self.step_update_ratios: list[list[float]] = []
        self.warnings: list[dict[str, Any]] = []
        self.plots: list[Path] = []
        self._flagged: dict[str, str] = {}
        self._handles: list[Any] = []
        self._params: list[Tensor] = []
        self._owner: Tensor | None = None  # layer index of each entry of _params
        self._owners: dict[int, Tensor] = {}
        self._reset_epoch()

    # -- setup -------------------------------------------------------------------

    def _reset_epoch(self) -> None:
        self._pending: list[tuple[int, Tensor, Tensor | None]] = []  # step, norms, ratios
        self._alive: dict[str, Tensor] = {}
        self._sat: dict[str, list[Any]] = {}  # name -> [count tensor, total int]
        self._before: list[Tensor] | None = None

    def _find(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        modules = dict(model.named_modules())
        if self.wanted is not None:
            missing = [n for n in self.wanted if n not in modules]
            if missing:
                names = [n for n, m in modules.items() if any(True for _ in m.parameters(False))]
                raise ConfigError(
                    f"GradientDiagnostics: no module named {missing[0]!r}; "
                    f"modules with parameters: {', '.join(names)}"
                )
            return [(n, modules[n]) for n in self.wanted]
        found = []
        for name, mod in modules.items():
            w = getattr(mod, "weight", None)
            if isinstance(w, nn.Parameter) and w.ndim >= 2 and w.requires_grad:
                found.append((name, mod))
        return found

    def on_fit_start(self, state: TrainState) -> None:
        model = state.model
        layers = self._find(model)
        names = [n for n, _ in layers]
        if self.layer_names and names != self.layer_names:  # resumed onto another model
            raise ConfigError("GradientDiagnostics: the model's layers differ from the saved ones")
        self.layer_names = names
        params, owner = [], []
        for i, (_, mod) in enumerate(layers):
            for p in mod.parameters(recurse=False):
                if p.requires_grad:
                    params.append(p)
                    owner.append(i)
        self._params = params
        self._owner = torch.tensor(owner, device=state.device, dtype=torch.long)
        # row r of a (2, layers) result: parameter i of list r goes to r * layers + owner[i]
        self._owners = {2: torch.cat([self._owner, self._owner + len(names)])}
        dev = state.device
        self._pending = [
            (s, n.to(dev), None if r is None else r.to(dev)) for s, n, r in self._pending
        ]
        self._alive = {k: v.to(dev) for k, v in self._alive.items()}
        self._sat = {k: [c.to(dev), t] for k, (c, t) in self._sat.items()}
        self.activation_names = []
        for name, mod in model.named_modules():
            kind = "relu" if isinstance(mod, nn.ReLU) else _SATURATING.get(type(mod))
            if kind is None:
                continue
            self.activation_names.append(name)
            self.activation_kinds[name] = kind
            self._handles.append(mod.register_forward_hook(self._hook(name, kind)))

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def on_fit_end(self, state: TrainState) -> None:
        self._remove_hooks()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._remove_hooks()

    # -- activations ----------------------------------------------------------------

    def _hook(self, name: str, kind: str) -> Any:
        # saturated <=> normalised derivative < thr, solved for the output y:
        # 4y(1-y) < thr <=> |y - 1/2| > sqrt(1-thr)/2;  1-y^2 < thr <=> |y| > sqrt(1-thr)
        edge = math.sqrt(1.0 - self.saturation) * (0.5 if kind == "sigmoid" else 1.0)
        centre = 0.5 if kind == "sigmoid" else 0.0

        def hook(module: nn.Module, inputs: Any, out: Tensor) -> None:
            if not module.training:  # validation and predict passes do not count
                return
            y = out.detach()
            if kind == "relu":
                # ReLU output is >= 0, so a unit (dim 1: a feature, or a channel
                # of (N, C, H, W)) fired iff its running maximum is > 0
                if y.ndim == 2:
                    peak = y.amax(dim=0)
                elif y.ndim > 2:
                    peak = y.amax(dim=tuple(d for d in range(y.ndim) if d != 1))
                else:
                    peak = y.clone()  # y is the module's output: never update it in place
                prev = self._alive.get(name)
                if prev is None:
                    self._alive[name] = peak
                else:
                    torch.maximum(prev, peak, out=prev)  # in place: one kernel, no allocation
                return
            off = (y - centre).abs_() if centre else y.abs()
            count = torch.count_nonzero(off > edge)
            acc = self._sat.get(name)
            if acc is None:
                self._sat[name] = [count, y.numel()]
            else:
                acc[0] = acc[0] + count
                acc[1] += y.numel()

        return hook

    # -- steps ------------------------------------------------------------------------

    def _norms(self, tensors: list[Tensor]) -> Tensor:
        """Per-layer norms of ``k`` lists of per-parameter tensors, shape ``(k, layers)``.

        One ``_foreach_norm`` over all of them and one ``index_add_``: a handful
        of kernels per sampled step whatever the number of layers.
        """
        sq = torch.stack(torch._foreach_norm(tensors)).float().square()
        k = len(tensors) // len(self._params)
        owner = self._owner if k == 1 else self._owners[k]
        per = sq.new_zeros(k * len(self.layer_names)).index_add_(0, owner, sq)
        return per.view(k, -1).sqrt()

    def on_before_step(self, state: TrainState) -> None:
        if state.step % self.every or not self._params:
            return
        params = [p.detach() for p in self._params]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        # gradient and weight norms now, the update's norm after the step
        self._pending.append((state.step + 1, self._norms(grads + params), None))
        self._before = torch._foreach_mul(params, 1.0)  # a copy of the weights

    def on_step_end(self, state: TrainState) -> None:
        if self._before is None:
            return
        now = [p.detach() for p in self._params]
        delta = self._norms(torch._foreach_sub(now, self._before))[0]
        step, norms, _ = self._pending[-1]
        # 0/0 -> nan: a layer of zeros has no scale to compare the step with
        self._pending[-1] = (step, norms[0], delta / norms[1])
        self._before = None

    # -- epochs ---------------------------------------------------------------------------

    def _flush_steps(self) -> tuple[list[list[float]], list[list[float]]]:
        """Move the epoch's per-step tensors to the host (one transfer) and record them."""
        if not self._pending:
            return [], []
        norms = (
            torch.stack([n.view(-1, n.shape[-1])[0] for _, n, _ in self._pending]).cpu().tolist()
        )
        nan = torch.full((len(self.layer_names),), float("nan"))
        ratios = torch.stack(
            [r.cpu() if r is not None else nan for _, _, r in self._pending]
        ).tolist()
        self.steps += [s for s, _, _ in self._pending]
        self.step_grad_norms += norms
        self.step_update_ratios += ratios
        self._pending = []
        return norms, ratios

    def on_epoch_end(self, state: TrainState) -> Control | None:
        norms, ratios = self._flush_steps()
        names = self.layer_names

        def mean(rows: list[list[float]], j: int) -> float:
            vals = [r[j] for r in rows if not math.isnan(r[j])]
            return sum(vals) / len(vals) if vals else float("nan")

        record = {
            "epoch": state.epoch,
            "grad_norm": {n: mean(norms, j) for j, n in enumerate(names)},
            "update_ratio": {n: mean(ratios, j) for j, n in enumerate(names)},
            "dead": {n: float((a <= 0).float().mean()) for n, a in self._alive.items()},
            "saturated": {n: float(c) / t for n, (c, t) in self._sat.items() if t},
        }
        self.epochs.append(record)
        self._alive, self._sat = {}, {}
        events = self._check(record["grad_norm"])
        return Control(events=events) if events else None

    def _check(self, grad_norm: dict[str, float]) -> list[dict[str, Any]]:
        """The epoch's vanishing/exploding events (:func:`gradient_events`), recorded in ``warnings``."""
        events = gradient_events(self.layer_names, grad_norm, self.vanish, self.explode, self._flagged)
        self.warnings += events
        return events

    # -- resume and export ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        nan = [float("nan")] * len(self.layer_names)
        pending = [
            [step, n.view(-1, n.shape[-1])[0].tolist(), nan if r is None else r.tolist()]
            for step, n, r in self._pending
        ]
        return {
            "epochs": json.loads(json.dumps(self.epochs)),
            "steps": list(self.steps),
            "step_grad_norms": [list(r) for r in self.step_grad_norms],
            "step_update_ratios": [list(r) for r in self.step_update_ratios],
            "warnings": [dict(w) for w in self.warnings],
            "flagged": dict(self._flagged),
            "layer_names": list(self.layer_names),
            "pending": pending,  # the current epoch's sampled steps
            "alive": {k: v.cpu() for k, v in self._alive.items()},
            "saturated": {k: [int(c), t] for k, (c, t) in self._sat.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = state["epochs"]
        self.steps, self.step_grad_norms = state["steps"], state["step_grad_norms"]
        self.step_update_ratios, self.warnings = state["step_update_ratios"], state["warnings"]
        self._flagged, self.layer_names = state["flagged"], state["layer_names"]
        # tensors are moved to the training device in on_fit_start
        self._pending = [(s, torch.tensor(n), torch.tensor(r)) for s, n, r in state["pending"]]
        self._alive = dict(state["alive"])
        self._sat = {k: [torch.tensor(c), t] for k, (c, t) in state["saturated"].items()}

    def records(self) -> list[dict[str, Any]]:
        """Flat per-epoch, per-layer rows: ``{"epoch", "layer", "grad_norm", ...}``."""
        rows = []
        for rec in self.epochs:
            for name in self.layer_names:
                rows.append({"epoch": rec["epoch"], "layer": name,
                             "grad_norm": rec["grad_norm"].get(name, float("nan")),
                             "update_ratio": rec["update_ratio"].get(name, float("nan"))})  # fmt: skip
            for name in self.activation_names:
                kind = self.activation_kinds[name]
                key = measure(kind)
                rows.append({"epoch": rec["epoch"], "layer": name, "activation": kind,
                             key: rec[key].get(name, float("nan"))})  # fmt: skip
        return rows

    def save(self, path: str | os.PathLike) -> Path:
        """Write the epochs, step series and warnings as one JSON file (atomically)."""
        data = {k: v for k, v in self.state_dict().items() if k not in ("alive", "saturated")}
        data["activations"] = dict(self.activation_kinds)
        return write_text(path, json.dumps(data, indent=1))

    def plot(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write the diagnostics plots as PNGs into ``out_dir``; returns their paths.

        ``grad_norm_depth.png`` (epoch-mean gradient norm against depth, one
        line per epoch), ``grad_norm_time.png`` and ``update_ratio.png`` (per
        layer against the step) and, when the model has ReLU/sigmoid/tanh
        modules, ``activation_heatmap.png`` (dead or saturated fraction per
        activation layer and epoch).
        """
        self.plots = plot_all(self, Path(out_dir))
        return self.plots

    def report_section(self, out_dir: str | os.PathLike | None = None) -> Any:
        """A :class:`gradwise.report.Section` with the last epoch's numbers and the plots.

        With ``out_dir`` the plots are (re)drawn there first; otherwise the
        section shows the plots of the last :meth:`plot` call, if any.
        """
        if out_dir is not None:
            self.plot(out_dir)
        return report_section(self)
