"""``lr_find`` on sharded (FSDP2, DTensor) parameters, in 2 processes on 127.0.0.1 (gloo).

Each rank feeds its half of every global batch; the losses are averaged over
the ranks, so both ranks must record the curve of one process fed the whole
batches and suggest the same lr, and leave the sharded model as it was.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from gradwise.errors import ConfigError

_spec = importlib.util.spec_from_file_location(
    "_test_fsdp", Path(__file__).with_name("test_fsdp.py")
)
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)
worker, one_rank_group = common.worker, common.one_rank_group


def test_global_batches_are_the_ranks_halves():
    whole = worker.lr_find_batches(None)
    halves = [worker.lr_find_batches(r) for r in (0, 1)]
    assert len(whole) == len(halves[0]) == 12
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *halves):
        assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(y, torch.cat([y0, y1]))


def test_a_sharded_model_is_not_moved(one_rank_group):
    from gradwise.schedules import lr_find

    model, opt = worker.lr_find_case(0, "sgd")
    data = worker.lr_find_batches(0)
    with pytest.raises(ConfigError, match="would move a sharded"):
        lr_find(model, torch.nn.CrossEntropyLoss(), data, opt, device="meta")
    # one rank: the curve is that of the plain model
    got = lr_find(model, torch.nn.CrossEntropyLoss(), data, opt, max_lr=50.0, num_steps=20)
    plain, popt = worker.lr_find_case(None, "sgd")
    want = lr_find(plain, torch.nn.CrossEntropyLoss(), data, popt, max_lr=50.0, num_steps=20)
    assert got.raw_losses == pytest.approx(want.raw_losses, rel=1e-5)
    assert got.suggestion == want.suggestion


@pytest.mark.slow
def test_two_ranks_suggest_what_one_process_does(tmp_path):
    for rank, (rc, text) in enumerate(common.run_ranks("lr_find", tmp_path)):
        assert rc == 0, f"rank {rank} failed:\n{text[-3000:]}"
    for optimizer in ("sgd", "adamw"):
        got = torch.load(tmp_path / f"lr_find_{optimizer}.pt", weights_only=False)
        want, model = worker.run_lr_find(None, optimizer)
        res = got["result"]
        assert res["lrs"] == pytest.approx(want.lrs, rel=1e-12), optimizer
        # up to lr 1 the curves agree to fp32 round-off; beyond, the loss
        # diverges and amplifies it (SGD: 3e-4, AdamW: 2e-2 at the last steps)
        n = sum(lr < 1.0 for lr in want.lrs)
        assert 20 < n < len(want.lrs)
        for key in ("raw_losses", "losses"):
            a, b = res[key], getattr(want, key)
            assert a[:n] == pytest.approx(b[:n], rel=1e-5), (optimizer, key)
            assert a[n:] == pytest.approx(b[n:], rel=5e-2), (optimizer, key)
        assert res["stopped_early"] == want.stopped_early
        assert res["suggestion_index"] == want.suggestion_index
        assert res["suggestion"] == want.suggestion
        # the sharded weights are back where they started, as the plain ones are
        for k, v in model.state_dict().items():
            assert torch.equal(got["state"][k], v), k


def test_an_optimizer_needing_whole_tensors_is_refused(one_rank_group):
    from gradwise import optim
    from gradwise.schedules import lr_find

    model, _ = worker.lr_find_case(0, "sgd")
    lamb = optim.lamb(list(model.named_parameters()), lr=1e-3)
    weights = {k: v.full_tensor().clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match=r"lr_find on a sharded \(FSDP\) model cannot run the "
                       r"optimizer lamb"):  # fmt: skip
        lr_find(model, torch.nn.CrossEntropyLoss(), worker.lr_find_batches(0), lamb)
    for k, v in model.state_dict().items():
        assert torch.equal(v.full_tensor(), weights[k])  # refused before any step
