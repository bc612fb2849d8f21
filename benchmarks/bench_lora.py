"""gradwise.lora against PEFT on a small random causal LM (Llama architecture).

Measured in one run, interleaved so that machine load hits every variant alike:

- merged forward / base forward          (target ≤ 1.02: a merged adapter costs nothing)
- unmerged forward, ours / PEFT's        (target ≤ 1.0, same LoRA config)
- train step (fwd+bwd+AdamW), ours / PEFT's (target ≤ 1.0)
- LoRA optimizer-state bytes / full fine-tune (target ≤ 0.05)

Run: ``python benchmarks/bench_lora.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings

import torch

from gradwise.lora import LoRAConfig, inject, merge


def build_model(quick: bool) -> torch.nn.Module:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=2 if quick else 4,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=2000,
        max_position_embeddings=256,
    )
    return transformers.LlamaForCausalLM(cfg)


def randomize_lora(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g).to(p.device) * 0.02)


def optimizer_state_bytes(model: torch.nn.Module, ids: torch.Tensor) -> int:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    total = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values()
                if torch.is_tensor(t))
    model.zero_grad(set_to_none=True)
    return total


def timed(fn, n: int, device: torch.device) -> list[float]:
    """Seconds of each of ``n`` calls (the GPU synchronised around each)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and fewer repeats")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(2)
    # the same count for gradwise's Trainer (its own rule weighs the machine's load too)
    os.environ["GRADWISE_THREADS"] = "2"
    device = torch.device(args.device)
    import peft

    batch, seq = (2, 64) if args.quick else (4, 128)
    rounds, n = (4, 3) if args.quick else (16, 5)
    lora_kwargs = dict(r=8, target_modules="all-linear")

    base = build_model(args.quick).eval().to(device)
    ids = torch.randint(0, 2000, (batch, seq), generator=torch.Generator().manual_seed(0)).to(device)

    ours = inject(copy.deepcopy(base), LoRAConfig(alpha=16, **lora_kwargs)).eval()
    randomize_lora(ours)
    ours_merged = merge(copy.deepcopy(ours)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(lora_alpha=16, **lora_kwargs))
    theirs.load_state_dict(
        {f"base_model.model.{k}": v for k, v in ours.state_dict().items() if "lora_" in k}, strict=False
    )
    theirs.eval()
    n_wrapped = sum(1 for m in ours.modules() if hasattr(m, "lora_A"))

    with torch.no_grad():
        diff = (ours(input_ids=ids).logits - theirs(input_ids=ids).logits).abs().max().item()
        diff_merged = (ours_merged(input_ids=ids).logits - ours(input_ids=ids).logits).abs().max().item()

    def forward(model):
        def run():
            with torch.no_grad():
                model(input_ids=ids)
        return run

    def train_step(model):
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def run():
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return run

    fwd = {
        "base": forward(base),
        "base copy": forward(copy.deepcopy(base)),  # control: the timing noise floor
        "ours merged": forward(ours_merged),
        "ours unmerged": forward(ours),
        "PEFT unmerged": forward(theirs),
    }
    train_ours, train_theirs = copy.deepcopy(ours), copy.deepcopy(theirs)
    step = {"ours train": train_step(train_ours), "PEFT train": train_step(train_theirs)}
    cases = {**fwd, **step}
    for fn in cases.values():  # warm-up
        fn()
        fn()
    # Interleave the cases in rounds, rotating their order, so drifting machine load hits
    # all alike; the minimum over all calls estimates each case's cost without the noise.
    names = list(cases)
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for i in range(rounds):
        for name in names[i % len(names):] + names[: i % len(names)]:
            samples[name].extend(timed(cases[name], n, device))
    best = {k: min(v) for k, v in samples.items()}
    median = {k: statistics.median(v) for k, v in samples.items()}

    full_bytes = optimizer_state_bytes(copy.deepcopy(base).train().requires_grad_(True), ids)
    lora_bytes = optimizer_state_bytes(copy.deepcopy(ours).train(), ids)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, peft {peft.__version__}, {where}, threads {torch.get_num_threads()}")
    n_params = sum(p.numel() for p in base.parameters())
    print(f"model: Llama {n_params / 1e6:.2f}M params, batch {batch}x{seq}; "
          f"LoRA r=8 all-linear on {n_wrapped} layers")
    print(f"max |ours - PEFT| logits: {diff:.2e}; max |merged - unmerged|: {diff_merged:.2e}")
    for name, t in best.items():
        print(f"  {name:<14} min {1e3 * t:8.2f} ms   median {1e3 * median[name]:8.2f} ms   "
              f"({rounds * n} calls)")
    print(f"noise floor (base copy / base): {best['base copy'] / best['base']:.3f}")
    ratios = [
        ("merged fwd / base fwd", best["ours merged"] / best["base"], 1.02),
        ("unmerged fwd ours / PEFT", best["ours unmerged"] / best["PEFT unmerged"], 1.0),
        ("train step ours / PEFT", best["ours train"] / best["PEFT train"], 1.0),
        ("LoRA / full-FT optimizer bytes", lora_bytes / full_bytes, 0.05),
    ]
    print(f"optimizer state: LoRA {lora_bytes:,} B, full fine-tune {full_bytes:,} B")
    for label, value, target in ratios:
        verdict = "ok" if value <= target else "MISS"
        print(f"RATIO {label:<32} {value:6.3f}  (target <= {target})  {verdict}")


if __name__ == "__main__":
    main()
