"""Augmentations: hand-computed references, train-only, seeded, mixup loss."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradwise.errors import ConfigError
from gradwise.finetune import (
    Augment,
    Cutout,
    GaussianNoise,
    Mixup,
    RandomAffine,
    RandomCrop,
    RandomFlip,
    augmentation,
)
from gradwise.nn import multiclass
from gradwise.train import Trainer


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_random_crop_is_a_shift_of_the_padded_image():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    out = RandomCrop(padding=2)(x, _gen(7))
    off = torch.randint(0, 5, (2, 2), generator=_gen(7))  # the same draws: (dy for all, dx for all)
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(2):
        dy, dx = int(off[0, i]), int(off[1, i])
        assert torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 6])


def test_flip_noise_cutout_references():
    x = torch.rand(4, 1, 6, 6, generator=_gen(1))
    assert torch.equal(RandomFlip(p=1.0)(x, _gen()), x.flip(-1))
    assert torch.equal(RandomFlip(p=0.0)(x, _gen()), x)
    assert torch.equal(RandomFlip(p=1.0, axis="vertical")(x, _gen()), x.flip(-2))
    torch.testing.assert_close(RandomAffine(degrees=0.0)(x, _gen()), x, atol=1e-6, rtol=0)
    noise = GaussianNoise(std=0.5)(torch.zeros(20000), _gen(2))
    assert abs(noise.std().item() - 0.5) < 0.01 and abs(noise.mean().item()) < 0.01
    cut = Cutout(size=2)(torch.ones(50, 1, 8, 8), _gen(4))
    zeros = (cut == 0).flatten(1).sum(1)
    # a 2x2 square, cut where it sticks out of the image
    assert set(zeros.tolist()) <= {1, 2, 4} and (zeros == 4).float().mean() > 0.5
    assert torch.equal(Cutout(size=3, p=0.0)(cut, _gen()), cut)


def test_affine_matches_scipy_bilinear_reference():
    ndimage = pytest.importorskip("scipy.ndimage")
    n, size = 3, 7
    x = torch.rand(n, 1, size, size, generator=_gen(1), dtype=torch.float64)
    aug = RandomAffine(degrees=25.0, translate=0.1, scale=(0.8, 1.2))
    out = aug(x, _gen(9))
    # the documented draws, in order: angles, shifts (x for all, then y for all), zooms
    g = _gen(9)
    angle = torch.deg2rad(-25.0 + 50.0 * torch.rand(n, generator=g))
    shift = (-0.1 + 0.2 * torch.rand(2 * n, generator=g)).view(2, n)
    zoom = 0.8 + 0.4 * torch.rand(n, generator=g)
    c = (size - 1) / 2
    for i in range(n):
        cos, sin = torch.cos(angle[i]) / zoom[i], torch.sin(angle[i]) / zoom[i]
        # (row, col) coordinates: input = A @ output + offset, about the image centre
        A = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64).numpy()
        b = (size / 2) * torch.tensor([2 * shift[1, i], 2 * shift[0, i]], dtype=torch.float64).numpy()
        offset = c - A @ [c, c] + b
        ref = ndimage.affine_transform(x[i, 0].numpy(), A, offset=offset, order=1, mode="grid-constant")
        torch.testing.assert_close(out[i, 0], torch.from_numpy(ref), atol=1e-9, rtol=1e-9)


class Recorder(nn.Module):
    """A linear model that remembers the inputs of every forward call."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, x.detach().clone()))
        return self.linear(x)


def _data():
    g = _gen(0)
    return torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)


def test_augment_runs_in_training_only_and_is_seeded():
    X, y = _data()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = Recorder()
        aug = Augment([GaussianNoise(std=1.0)], seed=3)
        trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), multiclass(3),
                          epochs=2, batch_size=32, shuffle=False, callbacks=[aug], seed=0)
        trainer.fit((X, y), (X, y))
        trainer.evaluate((X, y))
        runs.append(model.seen)
    seen = runs[0]
    train_inputs = [x for training, x in seen if training]
    eval_inputs = [x for training, x in seen if not training]
    assert len(train_inputs) == 2 and len(eval_inputs) == 3
    assert all(torch.equal(x, X) for x in eval_inputs)  # validation and evaluate: untouched
    noise0 = torch.randn(32, 4, generator=_gen(3))
    torch.testing.assert_close(train_inputs[0], X + noise0)  # the seed's first draw
    assert not torch.equal(train_inputs[0], train_inputs[1])  # fresh noise each batch
    assert all(torch.equal(a[1], b[1]) for a, b in zip(runs[0], runs[1]))  # same seed, same run
    assert not model._forward_pre_hooks  # the hook is gone after fit


def test_flat_rows_as_images_and_errors():
    aug = Augment([RandomCrop(padding=1), Cutout(size=2)], seed=0, image_shape=(1, 4, 4))
    out = aug.transform(torch.ones(3, 16))
    assert out.shape == (3, 16) and (out == 0).any()
    with pytest.raises(ConfigError, match="image_shape"):
        Augment([RandomCrop(padding=1)]).transform(torch.ones(3, 16))
    with pytest.raises(ConfigError, match="float inputs"):
        Augment([GaussianNoise(0.1)]).transform(torch.ones(3, 16, dtype=torch.long))
    with pytest.raises(ConfigError, match="unknown augmentation 'crop'"):
        augmentation({"name": "crop"})
    with pytest.raises(ConfigError, match="unknown cutout argument"):
        augmentation({"name": "cutout", "sise": 2})
    with pytest.raises(ConfigError, match="padding must be"):
        RandomCrop(padding=0)
    assert isinstance(augmentation("affine", scale=[0.9, 1.1]).scale, tuple)


def test_mixup_mixes_inputs_and_losses():
    X, y = _data()
    head = multiclass(3)
    aug = Augment([Mixup(alpha=0.4)], seed=5)
    loss_fn = aug.loss(head)
    model = nn.Linear(4, 3)
    handle = model.register_forward_pre_hook(aug._hook)
    out = model(X)
    lam, perm = Mixup(alpha=0.4).draw(32, _gen(5))
    mixed = lam * X + (1 - lam) * X[perm]
    torch.testing.assert_close(out, F.linear(mixed, model.weight, model.bias))
    loss = loss_fn(out, y)
    expected = lam * F.cross_entropy(out, y) + (1 - lam) * F.cross_entropy(out, y[perm])
    torch.testing.assert_close(loss, expected)
    assert loss_fn(out, y) == F.cross_entropy(out, y)  # no pending mix: the plain loss
    model(X)
    with pytest.raises(ConfigError, match="augment.loss"):
        model(X)  # the previous mix was never consumed by a mixing loss
    handle.remove()
    assert loss_fn.name == "multiclass" and loss_fn.out_features == 3


def test_mixup_trains_through_the_trainer():
    X, y = _data()
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    aug = Augment([Mixup(alpha=0.2)], seed=0)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), aug.loss(multiclass(3)),
                      epochs=3, batch_size=8, callbacks=[aug], seed=0)
    history = trainer.fit((X, y))
    assert len(history) == 3 and "train_accuracy" in history[0]
