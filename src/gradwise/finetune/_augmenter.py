"""``Augment``: apply seeded batch augmentations to training batches only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gradwise.errors import ConfigError
from gradwise.finetune._augment import Augmentation, Mixup, augmentation
from gradwise.train import Callback, TrainState


class Augment(Callback):
    """Augment the inputs of training batches, seeded, and never those of evaluation.

    As a :class:`gradwise.train.Trainer` callback it puts a forward pre-hook
    on the model for the length of ``fit``: while the model is in train mode
    the first input of each forward call goes through the augmentations in
    order; in eval mode (validation, ``evaluate``, ``predict``) nothing
    changes. Every random draw comes from this object's own generator, seeded
    with ``seed`` at the start of ``fit`` and saved in checkpoints, so a run
    is reproducible and resumes bit for bit.

    :class:`~gradwise.finetune.Mixup` also mixes the targets through the
    loss: pass ``loss=augment.loss(head)`` to the trainer.

    Args:
        augmentations: :class:`Augmentation` objects or config mappings
            (``{"name": "random_crop", "padding": 1}``), applied in order
            (mixup, at most one, always last).
        seed: seed of the augmentation generator.
        image_shape: ``(C, H, W)`` to view flat rows ``(N, C·H·W)`` as images
            for the image augmentations (e.g. ``Table.image_shape``).

    Example:
        >>> from gradwise.finetune import RandomCrop, GaussianNoise
        >>> aug = Augment([RandomCrop(padding=1), GaussianNoise(0.1)], seed=0, image_shape=(1, 8, 8))
        >>> aug.transform(torch.zeros(5, 64)).shape
        torch.Size([5, 64])
        >>> # Trainer(model, opt, head, callbacks=[aug])
    """

    order = -5

    def __init__(
        self,
        augmentations: Sequence[Augmentation | Mapping[str, Any]],
        *,
        seed: int = 0,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"Augment: seed must be an int, got {seed!r}")
        augs = [a if isinstance(a, Augmentation) else augmentation(a) for a in augmentations]
        mixups = [a for a in augs if isinstance(a, Mixup)]
        if len(mixups) > 1:
            raise ConfigError("Augment: give mixup at most once")
        self.mixup: Mixup | None = mixups[0] if mixups else None
        self.augmentations = [a for a in augs if not isinstance(a, Mixup)]
        if image_shape is not None:
            image_shape = tuple(image_shape)
            if len(image_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in image_shape):
                raise ConfigError(f"Augment: image_shape must be (C, H, W), got {image_shape!r}")
        self.image_shape = image_shape
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._pending: tuple[float, Tensor] | None = None
        self._handle: Any = None

    # -- the batch transform ------------------------------------------------------------

    def transform(self, x: Tensor) -> Tensor:
        """Apply the augmentations (mixup excepted) to one batch ``x``."""
        if not x.is_floating_point():
            raise ConfigError(
                f"Augment: augmentations need float inputs, got {x.dtype} (token ids cannot be "
                "augmented this way)"
            )
        flat = None
        if any(a.image for a in self.augmentations) and x.dim() != 4:
            if x.dim() != 2 or self.image_shape is None:
                raise ConfigError(
                    f"Augment: image augmentations need (N, C, H, W) inputs, or flat (N, C*H*W) "
                    f"rows with image_shape; got shape {tuple(x.shape)} and image_shape={self.image_shape}"
                )
            flat = x.shape
            x = x.reshape(x.shape[0], *self.image_shape)
        for aug in self.augmentations:
            x = aug(x, self.generator)
        return x.reshape(flat) if flat is not None else x

    def __call__(self, x: Tensor) -> Tensor:
        return self.transform(x)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not module.training or not args or not isinstance(args[0], Tensor):
            return None
        if self._pending is not None:
            raise ConfigError(
                "Augment: mixup mixed a batch but the loss did not mix the targets; "
                "pass loss=augment.loss(head) to the Trainer"
            )
        x = self.transform(args[0])
        if self.mixup is not None:
            lam, perm = self.mixup.draw(x.shape[0], self.generator)
            perm = perm.to(x.device)
            x = lam * x + (1.0 - lam) * x[perm]
            self._pending = (lam, perm)
        return (x, *args[1:])

    def take_mix(self) -> tuple[float, Tensor] | None:
        """The ``(λ, π)`` of the last training forward, once (the loss consumes it)."""
        pending, self._pending = self._pending, None
        return pending

    def loss(self, base: Callable[[Any, Any], Tensor]) -> nn.Module:
        """Wrap a loss (or a gradwise head) so that it mixes the targets as mixup mixed the inputs.

        ``λ·L(out, y) + (1−λ)·L(out, y[π])`` after a mixed training forward,
        ``L(out, y)`` otherwise. A head stays a head: the trainer still checks
        the model and labels and reports the head's metrics.
        """
        from gradwise.train._data import is_head

        return _MixupHeadLoss(base, self) if is_head(base) else _MixupLoss(base, self)

    # -- trainer events -------------------------------------------------------------------

    def on_fit_start(self, state: TrainState) -> None:
        if not state.resumed:
            self.generator.manual_seed(self.seed)
        self._pending = None
        self._handle = state.model.register_forward_pre_hook(self._hook)

    def _remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._pending = None

    def on_fit_end(self, state: TrainState) -> None:
        self._remove()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._remove()

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        augs = [*self.augmentations, *([self.mixup] if self.mixup else [])]
        return f"Augment({augs!r}, seed={self.seed}, image_shape={self.image_shape})"


class _MixupLoss(nn.Module):
    """A loss that mixes targets after a mixup forward (see :meth:`Augment.loss`)."""

    def __init__(self, base: Callable[[Any, Any], Tensor], augment: Augment) -> None:
        super().__init__()
        self.base = base
        self.augment = augment

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        mix = self.augment.take_mix()
        if mix is None:
            return self.base(output, target)
        lam, perm = mix
        return lam * self.base(output, target) + (1.0 - lam) * self.base(
            output, target[perm.to(target.device)]
        )


class _MixupHeadLoss(_MixupLoss):
    """The mixup loss of a gradwise head, keeping the head's interface for the trainer."""

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def default_metrics(self) -> tuple[str, ...]:
        return self.base.default_metrics

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def check_model(self, model: nn.Module) -> None:
        self.base.check_model(model)

    def check_targets(self, y: Any) -> None:
        self.base.check_targets(y)

    def prepare_target(self, y: Tensor) -> Tensor:
        return self.base.prepare_target(y)

    def probs(self, output: Tensor) -> Tensor:
        return self.base.probs(output)

    def predict(self, output: Tensor) -> Tensor:
        return self.base.predict(output)
