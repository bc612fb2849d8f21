"""SFT throughput: packed vs padded batches, and gradwise vs TRL's ``SFTTrainer``.

One run on the tiny Llama-style model of the demo (hidden 128, 4 layers,
4 heads), full fine-tuning on CPU with 2 threads, AdamW at a constant
learning rate, one epoch, fp32. The examples are ChatML conversations whose
token lengths are drawn from a log-normal distribution (median ~60 tokens,
long right tail up to ``max_length``), so padding a batch to its longest
example wastes most of it.

Variants (each trains a fresh copy of the same initial weights on the same
tokenized examples, with labels on the responses only):

* ``ours/padded``  gradwise ``Trainer`` over right-padded batches of 8 examples;
* ``ours/packed``  best-fit-decreasing rows of ``max_length`` tokens, 8 rows a
  batch, attention example by example (``instruct.packed_attention(model,
  "auto")``, which picks ``varlen`` for this model);
* ``ours/packed-mask``  the same rows with a block-diagonal attention mask;
* ``trl/padded``   ``trl.SFTTrainer`` (``packing=False``), same batch size;
* ``trl/packed``   ``SFTTrainer(packing=True)`` (BFD rows, padding-free).

TRL runs with ``bf16=False, gradient_checkpointing=False`` (its SFT defaults
are bf16 and activation checkpointing), so both sides do the same arithmetic.
The timed region is the training call (``Trainer.fit`` / ``SFTTrainer.train``);
TRL's dataset preparation and our tokenization run before it. Throughput is
real (non-padding) tokens per second. Runs alternate and repeat; the table
shows the median seconds and the ratios of medians. Usage::

    python benchmarks/bench_sft.py            # 1,500 examples, 3 repeats
    python benchmarks/bench_sft.py --quick    # 240 examples, 1 repeat
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import random
import statistics
import tempfile
import time
import warnings

import torch

from gradwise.instruct import (
    Example,
    corpus,
    get_template,
    make_loader,
    packed_attention,
    tiny_config,
    tokenize_dataset,
    train_tokenizer,
)
from gradwise.recipes.instruct import CausalLMAdapter, lm_loss
from gradwise.train import Trainer

MAX_LENGTH, BATCH, LR = 512, 8, 1e-3
WORDS = "the of and to in is was for on that with as by at from it this be are or".split()


def make_examples(n: int, seed: int = 0) -> list[Example]:
    """ChatML-sized conversations with log-normal lengths (in words ~ tokens)."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    out = []
    for _ in range(n):
        total = min(int(rng.lognormvariate(4.0, 0.8)), MAX_LENGTH - 24)
        prompt = max(2, int(total * rng.uniform(0.2, 0.6)))
        out.append(
            Example(
                [
                    {"role": "user", "content": text(prompt)},
                    {"role": "assistant", "content": text(max(2, total - prompt))},
                ]
            )
        )
    return out


def build_model(tokenizer):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = tiny_config(
        "llama",
        len(tokenizer),
        hidden=128,
        layers=4,
        heads=4,
        max_length=MAX_LENGTH,
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    return AutoModelForCausalLM.from_config(cfg)


def run_ours(model0, tokenized, pad_id, mode: str) -> float:
    model = copy.deepcopy(model0)
    attention = "block_mask"
    if mode == "packed":
        # the public API, as the recipe's `packed_attention: auto` does (varlen here)
        attention = packed_attention(model, "auto").mode
    loader = make_loader(
        tokenized,
        batch_size=BATCH,
        pad_id=pad_id,
        packing=mode != "padded",
        max_length=MAX_LENGTH,
        attention=attention,
        pairs=True,
        seed=0,
    )
    trainer = Trainer(
        CausalLMAdapter(model),
        torch.optim.AdamW(model.parameters(), lr=LR),
        lm_loss,
        epochs=1,
        seed=0,
        device="cpu",
    )
    start = time.perf_counter()
    trainer.fit(loader)
    return time.perf_counter() - start


def run_trl(model0, tokenizer, tokenized, packed: bool, out_dir: str) -> float:
    import datasets
    from trl import SFTConfig, SFTTrainer

    model = copy.deepcopy(model0)
    rows = [{"input_ids": t.input_ids, "labels": t.labels} for t in tokenized]
    args = SFTConfig(
        output_dir=out_dir,
        max_length=MAX_LENGTH,
        packing=packed,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        lr_scheduler_type="constant",
        num_train_epochs=1,
        weight_decay=0.0,
        optim="adamw_torch",
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        seed=0,
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=10**6,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="240 examples, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    n = 240 if args.quick else 1500
    repeats = args.repeats or (1 if args.quick else 3)
    torch.set_num_threads(2)
    # the same count for gradwise's Trainer (its own rule weighs the machine's load too)
    os.environ["GRADWISE_THREADS"] = "2"
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import transformers
    import trl

    transformers.utils.logging.disable_progress_bar()
    tokenizer = train_tokenizer(corpus(2000, seed=0) + [" ".join(WORDS)] * 50, vocab_size=384)
    template = get_template("chatml", tokenizer)
    tokenized, _ = tokenize_dataset(make_examples(n), template, max_length=MAX_LENGTH)
    n_tokens = sum(len(t) for t in tokenized)
    lengths = sorted(len(t) for t in tokenized)
    model0 = build_model(tokenizer)
    print(
        f"SFT throughput: {n} examples, {n_tokens:,} tokens (length median "
        f"{lengths[len(lengths) // 2]}, p90 {lengths[int(0.9 * len(lengths))]}, max "
        f"{lengths[-1]}); tiny Llama {sum(p.numel() for p in model0.parameters()):,} params; "
        f"batch {BATCH}, max_length {MAX_LENGTH}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}, trl {trl.__version__}; 2 threads"
    )
    times: dict[str, list[float]] = {
        k: []
        for k in ("ours/padded", "ours/packed", "ours/packed-mask", "trl/padded", "trl/packed")
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for name in order:
                who, mode = name.split("/")
                if who == "ours":
                    t = run_ours(model0, tokenized, tokenizer.pad_token_id, mode)
                else:
                    t = run_trl(model0, tokenizer, tokenized, mode == "packed", tmp)
                times[name].append(t)
                print(
                    f"  repeat {r + 1}: {name:<12} {t:7.2f} s  {n_tokens / t:9.0f} tokens/s",
                    flush=True,
                )
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{'variant':<14}{'median s':>10}{'min s':>9}{'tokens/s':>11}")
    for k, v in times.items():
        print(f"{k:<14}{med[k]:>10.2f}{min(v):>9.2f}{n_tokens / med[k]:>11.0f}")
    print("\nratios (higher is better for the first named):")
    print(
        f"  tokens/s packed / padded (ours)      {med['ours/padded'] / med['ours/packed']:.2f}  (target >= 1.5)"
    )
    print(
        f"  tokens/s packed, block mask / padded {med['ours/padded'] / med['ours/packed-mask']:.2f}"
    )
    print(f"  tokens/s packed / padded (TRL)       {med['trl/padded'] / med['trl/packed']:.2f}")
    print(
        f"  gradwise / TRL SFTTrainer, packed    {med['trl/packed'] / med['ours/packed']:.2f}  (target >= 1.0)"
    )
    print(f"  gradwise / TRL SFTTrainer, padded    {med['trl/padded'] / med['ours/padded']:.2f}")


if __name__ == "__main__":
    main()
