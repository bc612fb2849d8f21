"""A corrupt checkpoint on resume names the newest intact one beside it, and how to use it."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gradwise.errors import CheckpointError
from gradwise.nn import multiclass
from gradwise.train import Checkpoint, Trainer


def _trainer(callbacks, epochs=3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), multiclass(3),
                   epochs=epochs, batch_size=16, seed=0, callbacks=callbacks)  # fmt: skip


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()


def _cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_latest_names_the_intact_older_one_and_deleting_it_resumes(tmp_path):
    ck = tmp_path / "ck"
    _trainer([Checkpoint(ck, keep=3)], epochs=2).fit(_data())
    newest, older = ck / "epoch-0002.pt", ck / "epoch-0001.pt"
    os.utime(older, ns=(1, 1))  # older by its time too, as on disk after a real run
    _cut(newest)
    with pytest.raises(CheckpointError) as err:
        _trainer([]).fit(_data(), resume=ck)
    msg = str(err.value)
    assert "epoch-0002.pt' is corrupt" in msg
    assert f"the newest intact checkpoint is {str(older)!r}: delete the corrupt file" in msg
    # the advice works: without the bad file, resuming the directory takes the intact one
    newest.unlink()
    history = _trainer([]).fit(_data(), resume=ck)
    assert [r["epoch"] for r in history] == [1, 2, 3]


def test_an_intact_file_that_is_not_the_newest_is_named_as_a_file_to_resume_from(tmp_path):
    ck = tmp_path / "ck"
    _trainer([Checkpoint(ck, keep=3)]).fit(_data())
    for name, t in (("epoch-0001.pt", 1), ("epoch-0002.pt", 2), ("epoch-0003.pt", 3)):
        os.utime(ck / name, ns=(t, t))
    _cut(ck / "epoch-0003.pt")
    _cut(ck / "epoch-0002.pt")
    with pytest.raises(CheckpointError, match=r"intact checkpoint is '.*epoch-0001.pt': resume from that file"):
        _trainer([]).fit(_data(), resume=ck)
    _cut(ck / "epoch-0001.pt")
    with pytest.raises(CheckpointError, match="no intact checkpoint is beside it"):
        _trainer([]).fit(_data(), resume=ck)
