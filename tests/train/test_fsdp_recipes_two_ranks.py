"""``gradwise finetune`` and ``gradwise instruct`` under ``distributed: fsdp`` in 2 processes.

Each recipe runs on 2 ranks (gloo, CPU, 127.0.0.1, torchrun's variables) and
in this process without distribution. Every step's loss (``metrics.jsonl``;
under FSDP the mean over the ranks) and the saved weights must agree within
fp32 round-off with a per-rank batch B against one process with 2B: finetune
(the Trainer shards the data) and instruct (the recipe shards its DataLoader
and normalises the loss by the global count of response tokens).
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("_fsdp_recipe_worker.py")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(kind: str, raw: dict, tmp: Path) -> None:
    config = tmp / f"{kind}-{raw.get('name', '')}.json"
    config.write_text(json.dumps(raw))
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", WORLD_SIZE="2")  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), kind, str(config)],
            env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for r in range(2)
    ]
    try:
        out = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, text) in enumerate(zip(procs, out)):
        assert p.returncode == 0, f"rank {r} failed:\n{text[-3000:]}"


def step_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r.get("type") == "step"]


@pytest.mark.slow
def test_finetune_on_two_ranks_equals_one_process_with_the_global_batch(tmp_path):
    from safetensors.torch import load_file

    from gradwise import data as gdata
    from gradwise import nn as gnn
    from gradwise.config import parse_config
    from gradwise.finetune._config import FinetuneConfig, FinetuneDataConfig
    from gradwise.recipes.finetune import load_parts, run
    from gradwise.train import Checkpoint, Trainer

    ft = _load("_ft_recipe", Path(__file__).parents[1] / "finetune" / "test_finetune_recipe.py")
    parts, _ = gdata.standardize(load_parts(FinetuneDataConfig(**ft.SOURCE), text=False))
    torch.manual_seed(0)
    net = gnn.MLP(64, [32], 5)
    pre = Trainer(net, torch.optim.Adam(net.parameters(), lr=1e-2), gnn.multiclass(5), epochs=1,
                  batch_size=64, seed=0, callbacks=[Checkpoint(tmp_path / "pre", keep=1)])  # fmt: skip
    pre.fit(parts.train.tensors())

    def raw(name, batch, mode):
        r = ft._raw(tmp_path / name, tmp_path / "pre", augment=None, discriminative=None)
        r["training"] = {**r["training"], "epochs": 2, "batch_size": batch, "distributed": mode}
        return r

    one = run(parse_config(raw("one", 32, "off"), FinetuneConfig), progress=False)
    run_two_ranks("finetune", raw("two", 16, "fsdp"), tmp_path)
    two_dir = tmp_path / "two" / "ft"
    want, got = step_losses(one.run_dir), step_losses(two_dir)
    assert len(want) == 10 and got == pytest.approx(want, rel=1e-5)
    wa, wb = (load_file(d / "model.safetensors") for d in (one.run_dir, two_dir))
    assert set(wa) == set(wb)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def _instruct_raw(tmp: Path, name: str, batch: int, dist: str) -> dict:
    return {
        "name": name, "runs_dir": str(tmp), "model": {"path": str(tmp / "base")},
        "data": {"train": str(tmp / "train.jsonl"), "template": "chatml", "max_length": 48,
                 "packing": False},
        "lora": {"r": 4, "alpha": 8}, "optimizer": {"lr": 1e-2, "warmup": 0.0},
        "training": {"epochs": 3, "batch_size": batch, "device": "cpu", "progress": False,
                     "checkpoint": False, "distributed": dist, "log_every": 1},
        "eval": {"max_new_tokens": 2, "before": False}, "save": "adapter",
    }  # fmt: skip


@pytest.fixture(scope="module")
def instruct_one_process(tmp_path_factory):
    """A tiny random Llama, 8 examples, and the one-process LoRA run with batch 4."""
    from gradwise.config import parse_config
    from gradwise.instruct import Example, InstructConfig, write_jsonl
    from gradwise.instruct._base import train_tokenizer
    from gradwise.instruct._tasks import corpus
    from gradwise.recipes.instruct import sft

    tmp = tmp_path_factory.mktemp("instruct")
    conf = _load("_instruct_conftest", Path(__file__).parents[1] / "instruct" / "conftest.py")
    torch.manual_seed(0)
    tok = train_tokenizer(corpus(100, seed=0) + conf._EXTRA, vocab_size=300)
    conf.make_model(tok, "llama", hidden=32, layers=2, heads=2, seed=1).save_pretrained(
        tmp / "base"
    )
    tok.save_pretrained(tmp / "base")
    pairs = [("Reverse the word: CAT", "TAC"), ("What is 2 plus 3?", "5"),
             ("Spell: DOG", "D-O-G"), ("Reverse the word: SUN", "NUS"),
             ("Spell: ELEPHANT", "E-L-E-P-H-A-N-T"), ("What is 1 plus 1?", "2"),
             ("Reverse the word: PLANET", "TENALP"), ("What is 4 plus 4?", "8")]  # fmt: skip
    write_jsonl([Example.from_alpaca(q, a) for q, a in pairs], tmp / "train.jsonl")
    one = sft(parse_config(_instruct_raw(tmp, "one", 4, "off"), InstructConfig), progress=False)
    return tmp, one.run_dir


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fsdp", "ddp"])
def test_instruct_lora_on_two_ranks_equals_one_process_with_the_global_batch(
    instruct_one_process, mode
):
    """LoRA in 2 processes: each rank trains on its half of every global batch.

    2 ranks with batch 2 against one process with batch 4: every step's loss
    and the saved adapter agree within fp32 round-off. The responses differ
    in length, so the ranks' counts of response tokens differ within a step
    and only the loss normalised by the global count matches (the mean of
    the ranks' means misses all 6 steps, the first by ~3e-4 relative, 30x
    the tolerance). Only the
    adapters train; rank 0 gathers and saves them.
    """
    from safetensors.torch import load_file

    tmp, one_dir = instruct_one_process
    run_two_ranks("instruct", _instruct_raw(tmp, mode, 2, mode), tmp)
    want, got = step_losses(one_dir), step_losses(tmp / mode)
    assert len(want) == 6 and got == pytest.approx(want, rel=1e-5)
    fa, fb = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (one_dir, tmp / mode))
    assert set(fa) == set(fb) and fa and all("lora_" in k for k in fa)
    for k in fa:
        torch.testing.assert_close(fb[k], fa[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("packing", [False, True])
def test_shard_loader_splits_every_global_batch_across_the_ranks(packing):
    """Rank r takes perm[r::2] of each epoch: the ranks' step i is one process's step i.

    7 examples (or packed rows) on 2 ranks do not divide: the shards are
    padded by wrapping around to the epoch's first item, so both ranks take
    the same number of steps and the last global batch holds one repeat.
    """
    from gradwise.instruct._masking import TokenizedExample
    from gradwise.instruct._packing import make_loader, pack
    from gradwise.recipes.instruct import shard_loader

    # example k is token k + 1 repeated, so input_ids[:, 0] names an example (or a
    # packed row, by its first example); packed: 11 examples in 7 rows of 20 tokens
    lengths = [5, 9, 3, 12, 7, 4, 10] if not packing else [14, 4, 13, 16, 6, 15, 14, 5, 12, 3, 17]
    exs = [TokenizedExample([k + 1] * n, [k + 1] * n, 1) for k, n in enumerate(lengths)]
    kw = dict(pad_id=0, packing=packing, max_length=20, seed=5)
    if packing:
        rows = pack(lengths, 20)
        assert len(rows) == 7 and max(map(len, rows)) == 2

    def firsts(loader, epochs=2):
        return [[b["input_ids"][:, 0].tolist() for b in loader] for _ in range(epochs)]

    one = firsts(make_loader(exs, batch_size=4, **kw))
    ranks = [firsts(shard_loader(make_loader(exs, batch_size=2, **kw), r, 2)) for r in range(2)]
    assert one[0] != one[1]  # each epoch reshuffles
    for e in range(2):
        assert len(ranks[0][e]) == len(ranks[1][e]) == len(one[e]) == 2
        assert sorted(ranks[0][e][0] + ranks[1][e][0]) == sorted(one[e][0])
        first = one[e][0][0]  # the epoch's first item pads the last global batch
        assert sorted(ranks[0][e][1] + ranks[1][e][1]) == sorted(one[e][1] + [first])
        # interleaved: rank 0 holds perm[0::2], rank 1 perm[1::2]
        assert ranks[0][e][0] == one[e][0][0::2] and ranks[1][e][0] == one[e][0][1::2]
