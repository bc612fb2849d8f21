"""Seeded batch augmentations written on torch ops (no torchvision).

Each augmentation maps a whole batch to a new batch, drawing every random
number from the ``torch.Generator`` it is given, so that one seed gives one
sequence of augmented batches on any device (the draws happen on the CPU).
Image augmentations take ``(N, C, H, W)``; :class:`~gradwise.finetune.Augment`
reshapes flat pixel rows with its ``image_shape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gradwise.errors import ConfigError, unknown


def _number(owner: str, field: str, value: Any, lo: float, hi: float = math.inf, *,
            lo_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lo or (lo_open and value == lo) or value > hi:
        bound = f"{'>' if lo_open else '>='} {lo}" + ("" if hi == math.inf else f" and <= {hi}")
        raise ConfigError(f"{owner}: {field} must be a number {bound}, got {value!r}")
    return float(value)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


class Augmentation:
    """Base class: ``aug(x, generator) -> x`` on a batch; ``image`` ones need ``(N, C, H, W)``."""

    name: ClassVar[str] = ""
    image: ClassVar[bool] = False

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The mapping :func:`augmentation` rebuilds this object from."""
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class RandomCrop(Augmentation):
    """Pad each image by ``padding`` pixels, then crop back to ``H×W`` at a random offset.

    The offset ``(dy, dx)`` is uniform on ``{0..2p}²`` per image, so the
    content shifts by up to ``p`` pixels in each direction (the CIFAR recipe:
    ``padding=4`` on 32×32). ``mode`` is ``F.pad``'s: ``"constant"`` (zeros),
    ``"reflect"`` or ``"replicate"``.

    >>> g = torch.Generator().manual_seed(0)
    >>> RandomCrop(padding=1)(torch.ones(2, 1, 4, 4), g).shape
    torch.Size([2, 1, 4, 4])
    """

    name = "random_crop"
    image = True

    def __init__(self, padding: int = 2, mode: str = "constant") -> None:
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 1:
            raise ConfigError(f"random_crop: padding must be an int >= 1, got {padding!r}")
        if mode not in ("constant", "reflect", "replicate"):
            raise unknown("random_crop mode", str(mode), ("constant", "reflect", "replicate"))
        self.padding, self.mode = padding, mode

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = x.shape  # (N, C, H, W)
        p = self.padding
        padded = F.pad(x, (p, p, p, p), mode=self.mode)  # (N, C, H+2p, W+2p)
        off = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        rows = off[0][:, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = off[1][:, None] + torch.arange(w, device=x.device)  # (N, W)
        idx = torch.arange(n, device=x.device)[:, None, None]
        # advanced indices split by a slice: the broadcast dims (N, H, W) come first
        out = padded[idx, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()


class RandomFlip(Augmentation):
    """Mirror each image with probability ``p`` (``axis="horizontal"`` flips W, ``"vertical"`` H).

    Not for digits or text images, whose meaning a mirror changes.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.arange(4.0).view(1, 1, 1, 4)
    >>> RandomFlip(p=1.0)(x, g).flatten().tolist()
    [3.0, 2.0, 1.0, 0.0]
    """

    name = "flip"
    image = True

    def __init__(self, p: float = 0.5, axis: str = "horizontal") -> None:
        self.p = _number("flip", "p", p, 0.0, 1.0)
        if axis not in ("horizontal", "vertical"):
            raise unknown("flip axis", str(axis), ("horizontal", "vertical"))
        self.axis = axis

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        mask = (torch.rand(x.shape[0], generator=generator) < self.p).to(x.device)
        flipped = x.flip(-1 if self.axis == "horizontal" else -2)
        return torch.where(mask[:, None, None, None], flipped, x)


class RandomAffine(Augmentation):
    """Small random rotation, shift and zoom per image (bilinear, zeros outside).

    Per image: angle ``θ ~ U[-degrees, degrees]``, shift ``t ~ U[-translate,
    translate]²`` (fraction of the size), zoom ``s ~ U[scale]``. Output pixel
    ``u`` (normalized to ``[-1, 1]``) samples the input at ``R(θ)·u/s + 2t``,
    via ``F.affine_grid`` and ``F.grid_sample``.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(3, 1, 8, 8)
    >>> torch.allclose(RandomAffine(degrees=0.0)(x, g), x, atol=1e-6)
    True
    """

    name = "affine"
    image = True

    def __init__(
        self, degrees: float = 10.0, translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0)
    ) -> None:
        self.degrees = _number("affine", "degrees", degrees, 0.0, 180.0)
        self.translate = _number("affine", "translate", translate, 0.0, 0.5)
        if not isinstance(scale, (tuple, list)) or len(scale) != 2:
            raise ConfigError(f"affine: scale must be [low, high], got {scale!r}")
        lo = _number("affine", "scale[0]", scale[0], 0.0, lo_open=True)
        hi = _number("affine", "scale[1]", scale[1], lo)
        self.scale = (lo, hi)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n = x.shape[0]
        angle = torch.deg2rad(_uniform(n, -self.degrees, self.degrees, generator))
        shift = _uniform(2 * n, -self.translate, self.translate, generator).view(2, n)
        zoom = _uniform(n, *self.scale, generator)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, 2 * shift[0]], 1), torch.stack([sin, cos, 2 * shift[1]], 1)], 1
        ).to(device=x.device, dtype=x.dtype)  # (N, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class GaussianNoise(Augmentation):
    """Add ``N(0, std²)`` noise to every value; for images and tabular features alike.

    >>> g = torch.Generator().manual_seed(0)
    >>> GaussianNoise(std=0.0)(torch.ones(2, 3), g).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    name = "gaussian_noise"

    def __init__(self, std: float = 0.1) -> None:
        self.std = _number("gaussian_noise", "std", std, 0.0)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32)
        return x + self.std * noise.to(device=x.device, dtype=x.dtype)


class Cutout(Augmentation):
    """Zero a ``size×size`` square at a random centre, with probability ``p`` per image.

    DeVries & Taylor 2017; the square may stick out of the image (then less is cut).

    >>> g = torch.Generator().manual_seed(0)
    >>> int((Cutout(size=2)(torch.ones(1, 1, 8, 8), g) == 0).sum()) <= 4
    True
    """

    name = "cutout"
    image = True

    def __init__(self, size: int = 4, p: float = 1.0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"cutout: size must be an int >= 1, got {size!r}")
        self.size, self.p = size, _number("cutout", "p", p, 0.0, 1.0)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        cy = torch.randint(0, h, (n,), generator=generator)
        cx = torch.randint(0, w, (n,), generator=generator)
        on = torch.rand(n, generator=generator) < self.p
        top, left = cy - self.size // 2, cx - self.size // 2
        r = torch.arange(h)[None, :]
        c = torch.arange(w)[None, :]
        in_rows = (r >= top[:, None]) & (r < top[:, None] + self.size)  # (N, H)
        in_cols = (c >= left[:, None]) & (c < left[:, None] + self.size)  # (N, W)
        cut = in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None]  # (N, H, W)
        return x.masked_fill(cut[:, None].to(x.device), 0.0)


class Mixup(Augmentation):
    """Mixup (Zhang et al. 2018): train on convex mixes of pairs of examples.

    With ``λ ~ Beta(alpha, alpha)`` (one per batch) and a random permutation
    ``π``, the input is ``x̃ = λ·x + (1−λ)·x[π]`` and the loss
    ``λ·L(f(x̃), y) + (1−λ)·L(f(x̃), y[π])`` — for cross-entropy the same as
    training on the mixed soft label. It changes the loss, so it runs inside
    :class:`~gradwise.finetune.Augment` with ``Trainer(loss=augment.loss(head))``.
    """

    name = "mixup"

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = _number("mixup", "alpha", alpha, 0.0, lo_open=True)

    def draw(self, n: int, generator: torch.Generator) -> tuple[float, Tensor]:
        """``(λ, π)`` for a batch of ``n``; λ comes from NumPy seeded by ``generator``."""
        import numpy as np

        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        lam = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        return lam, torch.randperm(n, generator=generator)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        lam, perm = self.draw(x.shape[0], generator)
        return lam * x + (1.0 - lam) * x[perm.to(x.device)]


AUGMENTATIONS: dict[str, type[Augmentation]] = {
    cls.name: cls for cls in (RandomCrop, RandomFlip, RandomAffine, GaussianNoise, Cutout, Mixup)
}


def augmentation(name: str | Mapping[str, Any], **kwargs: Any) -> Augmentation:
    """Build an augmentation by name, or from a config mapping ``{"name": ..., **args}``.

    Names: ``random_crop``, ``flip``, ``affine``, ``gaussian_noise``, ``cutout``, ``mixup``.

    >>> augmentation({"name": "cutout", "size": 2})
    Cutout(size=2, p=1.0)
    """
    if isinstance(name, Mapping):
        kwargs = {**{k: v for k, v in name.items() if k != "name"}, **kwargs}
        if "name" not in name:
            raise ConfigError(f"an augmentation needs a 'name'; allowed: {', '.join(AUGMENTATIONS)}")
        name = name["name"]
    if not isinstance(name, str) or name not in AUGMENTATIONS:
        raise unknown("augmentation", str(name), AUGMENTATIONS)
    cls = AUGMENTATIONS[name]
    import inspect

    params = inspect.signature(cls.__init__).parameters
    for key in kwargs:
        if key not in params or key == "self":
            raise unknown(f"{name} argument", key, [p for p in params if p != "self"])
    if "scale" in kwargs and isinstance(kwargs["scale"], list):
        kwargs["scale"] = tuple(kwargs["scale"])
    return cls(**kwargs)
