"""Generation: filters against transformers' warpers, greedy against ``model.generate``."""

from __future__ import annotations

import pytest
import torch

from gradwise.errors import ConfigError
from gradwise.instruct import generate, top_k_filter, top_p_filter


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_equals_transformers_warper(k):
    from transformers.generation.logits_process import TopKLogitsWarper

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(k))
    ref = TopKLogitsWarper(top_k=k)(None, logits.clone())
    assert torch.equal(top_k_filter(logits, k), ref)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_equals_transformers_warper(p):
    from transformers.generation.logits_process import TopPLogitsWarper

    logits = 2 * torch.randn(8, 50, generator=torch.Generator().manual_seed(int(p * 100)))
    ref = TopPLogitsWarper(top_p=p)(None, logits.clone())
    assert torch.equal(top_p_filter(logits, p).isinf(), ref.isinf())


def test_top_p_keeps_smallest_set_reaching_p_by_hand():
    logits = torch.log(torch.tensor([[0.1, 0.4, 0.2, 0.3]]))
    assert top_p_filter(logits, 0.65).isinf().tolist() == [[True, False, True, False]]
    assert top_p_filter(logits, 0.75).isinf().tolist() == [[True, False, False, False]]
    assert top_p_filter(logits, 0.01).isinf().tolist() == [[True, False, True, True]]


def _prompts(tokenizer):
    texts = ["the quick brown fox", "hello", "zq plus 12 is"]
    return [tokenizer(t)["input_ids"] for t in texts]


def test_greedy_equals_transformers_generate(tiny_llama, tokenizer):
    prompts = _prompts(tokenizer)
    # a stop id the model never produces, so that both run all 12 steps
    ours = generate(
        tiny_llama, tokenizer, prompts, max_new_tokens=12, stop_ids=[-1], return_ids=True
    )
    for p, got in zip(prompts, ours):
        ref = tiny_llama.generate(
            torch.tensor([p]),
            attention_mask=torch.ones(1, len(p), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(p) :].tolist()
        assert got == ref


def test_batched_left_padding_equals_one_by_one(tiny_gpt2, tokenizer):
    prompts = _prompts(tokenizer)
    batched = generate(
        tiny_gpt2, tokenizer, prompts, max_new_tokens=8, stop_ids=[-1], return_ids=True
    )
    single = [
        generate(tiny_gpt2, tokenizer, p, max_new_tokens=8, stop_ids=[-1], return_ids=True)
        for p in prompts
    ]
    assert batched == single


def test_stops_at_stop_token_and_drops_it(tiny_llama, tokenizer):
    prompt = _prompts(tokenizer)[0]
    free = generate(
        tiny_llama, tokenizer, prompt, max_new_tokens=10, stop_ids=[-1], return_ids=True
    )
    stop = free[3]
    cut = free.index(stop)
    got = generate(
        tiny_llama, tokenizer, prompt, max_new_tokens=10, stop_ids=[stop], return_ids=True
    )
    assert got == free[:cut]
    text = generate(
        tiny_llama, tokenizer, tokenizer.decode(prompt), max_new_tokens=10, stop_ids=[stop]
    )
    assert text == tokenizer.decode(free[:cut], skip_special_tokens=True)


def test_sampling_is_seeded_and_follows_the_filtered_distribution(tiny_llama, tokenizer):
    prompt = _prompts(tokenizer)[1]
    kw = dict(
        max_new_tokens=1, do_sample=True, temperature=0.7, top_k=5, stop_ids=[-1], return_ids=True
    )
    n = 3000
    draws = generate(tiny_llama, tokenizer, [prompt] * n, seed=0, batch_size=n, **kw)
    assert draws == generate(tiny_llama, tokenizer, [prompt] * n, seed=0, batch_size=n, **kw)
    with torch.no_grad():
        logits = tiny_llama(torch.tensor([prompt])).logits[0, -1]
    probs = top_k_filter(logits[None] / 0.7, 5).softmax(-1)[0]
    counts = torch.bincount(torch.tensor([d[0] for d in draws]), minlength=len(probs)).float()
    assert counts[probs == 0].sum() == 0  # nothing outside the top 5
    # every frequency within 4 standard errors of its probability
    se = (probs * (1 - probs) / n).sqrt()
    assert ((counts / n - probs).abs() <= 4 * se + 1e-9).all()


def test_top_k_one_sampling_is_greedy(tiny_llama, tokenizer):
    prompts = _prompts(tokenizer)
    greedy = generate(tiny_llama, tokenizer, prompts, max_new_tokens=6, stop_ids=[-1])
    sampled = generate(
        tiny_llama,
        tokenizer,
        prompts,
        max_new_tokens=6,
        do_sample=True,
        top_k=1,
        seed=1,
        stop_ids=[-1],
    )
    assert sampled == greedy


def test_training_mode_is_restored_and_bad_arguments_fail(tiny_llama, tokenizer):
    tiny_llama.train()
    generate(tiny_llama, tokenizer, "hello", max_new_tokens=2)
    assert tiny_llama.training
    tiny_llama.eval()
    for kw, msg in [
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"top_p": 1.5}, "top_p must lie in"),
        ({"top_k": -1}, "top_k must be >= 0"),
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            generate(tiny_llama, tokenizer, "hello", **kw)


def test_decodes_through_the_models_own_generate_unpatched(tiny_llama, tokenizer, monkeypatch):
    from transformers import GenerationConfig

    seen = []
    real = type(tiny_llama).generate

    def spy(self, *args, **kwargs):
        seen.append(kwargs["generation_config"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_llama), "generate", spy)
    generate(tiny_llama, tokenizer, "hello", max_new_tokens=3, do_sample=True, top_k=4, seed=0)
    monkeypatch.undo()
    assert len(seen) == 1 and isinstance(seen[0], GenerationConfig)
    assert (seen[0].max_new_tokens, seen[0].do_sample, seen[0].top_k) == (3, True, 4)
    assert "generate" not in vars(tiny_llama)  # nothing was set on the model


def test_seeded_sampling_equals_transformers_generate_and_keeps_the_callers_rng(
    tiny_llama, tokenizer
):
    prompts = _prompts(tokenizer)[:1]
    state = torch.get_rng_state()
    ours = generate(
        tiny_llama,
        tokenizer,
        prompts,
        max_new_tokens=8,
        do_sample=True,
        temperature=0.8,
        top_k=7,
        top_p=0.9,
        seed=3,
        stop_ids=[-1],
        return_ids=True,
    )
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(3)
    p = prompts[0]
    ref = tiny_llama.generate(
        torch.tensor([p]),
        attention_mask=torch.ones(1, len(p), dtype=torch.long),
        max_new_tokens=8,
        do_sample=True,
        temperature=0.8,
        top_k=7,
        top_p=0.9,
        eos_token_id=None,
        pad_token_id=tokenizer.pad_token_id,
    )[0, len(p) :].tolist()
    assert ours == [ref]


def test_any_of_several_end_of_turn_ids_stops_and_the_models_eos_does_not_leak(
    tiny_llama, tokenizer
):
    import copy

    prompt = _prompts(tokenizer)[0]
    free = generate(tiny_llama, tokenizer, prompt, max_new_tokens=10, stop_ids=[-1], return_ids=True)
    first, second = free[2], free[5]
    cut = free.index(first)
    # two stop ids (EOS and an end-of-turn token, say): the first one met stops
    got = generate(
        tiny_llama, tokenizer, prompt, max_new_tokens=10, stop_ids=[second, first], return_ids=True
    )
    assert got == free[:cut]
    # a stop token set on the model's own generation_config is not added to ours
    model = copy.deepcopy(tiny_llama)
    model.generation_config.eos_token_id = first
    assert generate(model, tokenizer, prompt, max_new_tokens=10, stop_ids=[-1], return_ids=True) == free
