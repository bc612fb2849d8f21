"""``gradwise finetune`` and ``gradwise instruct`` under ``distributed: fsdp`` in 2 processes.

Each recipe runs on 2 ranks (gloo, CPU, 127.0.0.1, torchrun's variables) and
in this process without distribution. Every step's loss (``metrics.jsonl``;
under FSDP the mean over the ranks) and the saved weights must agree within
fp32 round-off: finetune with a per-rank batch B against one process with 2B
(the Trainer shards the data); instruct, whose DataLoader every rank reads
whole, against one process with B.
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
    config = tmp / f"{kind}.json"
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


@pytest.mark.slow
def test_instruct_lora_on_two_ranks_replicates_the_data(tmp_path):
    """LoRA under FSDP in 2 processes: only the adapters train, gathered and saved by rank 0.

    ``gradwise instruct`` hands the Trainer its own DataLoader, which is not
    sharded: every rank trains on all the examples (the Trainer warns), so
    the run equals one process with the *per-rank* batch, not the global one
    (see docs/distributed.md). The equality below pins that down.
    """
    from safetensors.torch import load_file

    from gradwise.config import parse_config
    from gradwise.instruct import Example, InstructConfig, write_jsonl
    from gradwise.instruct._base import train_tokenizer
    from gradwise.instruct._tasks import corpus
    from gradwise.recipes.instruct import sft

    conf = _load("_instruct_conftest", Path(__file__).parents[1] / "instruct" / "conftest.py")
    torch.manual_seed(0)
    tok = train_tokenizer(corpus(100, seed=0) + conf._EXTRA, vocab_size=300)
    base = tmp_path / "base"
    conf.make_model(tok, "llama", hidden=32, layers=2, heads=2, seed=1).save_pretrained(base)
    tok.save_pretrained(base)
    pairs = [("Reverse the word: CAT", "TAC"), ("What is 2 plus 3?", "5"),
             ("Spell: DOG", "D-O-G"), ("Reverse the word: SUN", "NUS")]  # fmt: skip
    write_jsonl([Example.from_alpaca(q, a) for q, a in pairs], tmp_path / "train.jsonl")

    def raw(name, batch, mode):
        return {
            "name": name, "runs_dir": str(tmp_path), "model": {"path": str(base)},
            "data": {"train": str(tmp_path / "train.jsonl"), "template": "chatml",
                     "max_length": 48, "packing": False},
            "lora": {"r": 4, "alpha": 8}, "optimizer": {"lr": 1e-2, "warmup": 0.0},
            "training": {"epochs": 3, "batch_size": batch, "device": "cpu", "progress": False,
                         "checkpoint": False, "distributed": mode, "log_every": 1},
            "eval": {"max_new_tokens": 2, "before": False}, "save": "adapter",
        }  # fmt: skip

    one = sft(parse_config(raw("one", 2, "off"), InstructConfig), progress=False)
    run_two_ranks("instruct", raw("two", 2, "fsdp"), tmp_path)
    want, got = step_losses(one.run_dir), step_losses(tmp_path / "two")
    assert len(want) == 6 and got == pytest.approx(want, rel=1e-5)
    fa, fb = (load_file(d / "adapter" / "adapter_model.safetensors")
              for d in (one.run_dir, tmp_path / "two"))  # fmt: skip
    assert set(fa) == set(fb) and fa and all("lora_" in k for k in fa)
    for k in fa:
        torch.testing.assert_close(fb[k], fa[k], rtol=1e-5, atol=1e-6)
