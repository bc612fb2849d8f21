"""Response-only labels over a corpus of real chat templates (``data/chat_templates``).

Each template is the ``chat_template`` field of a model's ``tokenizer_config.json``
as its maker publishes it (sources and licenses in ``data/chat_templates/README.md``,
one JSON manifest per template with its special tokens). The tokenizers are
trained here, offline: seeded byte-level BPE with a small vocabulary, with
each template's special tokens added as special tokens, wrapped in
transformers' ``PreTrainedTokenizerFast`` with the template set.

The reference is computed independently of :mod:`gradwise.instruct._masking`:
characters, not token ids. For the ``i``-th assistant message the span of
characters it adds is ``[len(P_i), len(R_i))`` in the full rendering ``T``
(``P_i``: the messages before it with the generation prompt, ``R_i``: up to
and including it, cut where ``T`` stops agreeing with it); the tokens of
``apply_chat_template(tokenize=True)`` whose offset-mapping ranges lie inside
a span are the labelled ones (the documented contract, docs/instruct.md).
Then the end-of-turn rule: a span without the end-of-turn token gets the
token labelled where the template writes it next, else one inserted.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import pathlib
import warnings

import pytest
import torch

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from gradwise.errors import DataError  # noqa: E402
from gradwise.instruct import (  # noqa: E402
    IGNORE_INDEX,
    Example,
    TokenizerTemplate,
    collate_packed,
    packed_attention,
    tokenize_example,
)
from gradwise.instruct._stop import end_of_turn_id  # noqa: E402

DATA = pathlib.Path(__file__).parent / "data" / "chat_templates"
MANIFESTS = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DATA.glob("*.json"))}
STEMS = sorted(MANIFESTS)

# Two tokenizers: a tiny vocabulary (few merges) and a larger one whose merges
# reach across words and markup, trained on different text.
_WORDS = (
    "hello world, the quick brown fox jumps over the lazy dog. Hello! How are you? I am fine. "
    "What is the capital of France? The capital of France is Paris. Thanks, and you? "
    "You are a helpful assistant. Answer briefly. user assistant system model User Assistant "
)
TOKENIZERS = {
    "bpe300": (300, [_WORDS] * 8),
    "bpe700": (700, [_WORDS * 3, "Paris.\nIt is in France.", "fine, thanks!"] * 12),
}

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer briefly."}
CONVERSATIONS = {
    "single": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris.\nIt is in France."},
    ],
    "multi": [
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "Hello! How are you?"},
        {"role": "user", "content": "I am fine. And you?"},
        {"role": "assistant", "content": "fine, thanks!"},
    ],
    "system": [
        SYSTEM,
        {"role": "user", "content": "the quick brown fox"},
        {"role": "assistant", "content": "jumps over the lazy dog."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ],
}


def _specials(manifest: dict) -> list[str]:
    st = manifest["special_tokens"]
    out = [st["bos"], st["eos"], st["end_of_turn"], *st["added"]]
    return list(dict.fromkeys(t for t in out if t))


@functools.cache
def corpus_tokenizer(stem: str, kind: str):
    """A byte-level BPE tokenizer trained here (seeded) with ``stem``'s special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    manifest = MANIFESTS[stem]
    vocab_size, texts = TOKENIZERS[kind]
    specials = _specials(manifest)
    torch.manual_seed(0)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    st = manifest["special_tokens"]
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=st["bos"],
        eos_token=st["eos"],
        pad_token=st["eos"],
        additional_special_tokens=[t for t in specials if t not in (st["bos"], st["eos"])],
    )
    hf.chat_template = (DATA / manifest["template"]).read_text(encoding="utf-8")
    return hf


@pytest.fixture(scope="session")
def tokenizer_cache():
    """Trained tokenizers, one per (template, kind), shared by every test of the session."""
    yield corpus_tokenizer
    corpus_tokenizer.cache_clear()


def _render(tok, messages, gen):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


def _ids(out) -> list[int]:
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _messages(tok, name):
    msgs = CONVERSATIONS[name]
    if name == "system":
        try:
            _render(tok, msgs, False)
        except Exception as e:  # e.g. Gemma 2: raise_exception('System role not supported')
            pytest.skip(f"the template refuses a system message: {e}")
    return msgs


def _special_start(tok, text: str, at: int) -> int:
    """Move ``at`` back to the start of a special token that it falls inside of."""
    for s in tok.all_special_tokens:
        for j in range(1, len(s)):
            if at - j >= 0 and text.startswith(s, at - j):
                return at - j
    return at


def _eot(tok, stem) -> int:
    return tok.convert_tokens_to_ids(MANIFESTS[stem]["special_tokens"]["end_of_turn"])


def reference(tok, messages, eot):
    """Expected ``(input_ids, labels, inserted)`` computed on characters (module docstring)."""
    text = _render(tok, messages, False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    assert ids == _ids(tok.apply_chat_template(messages, tokenize=True))
    offsets = enc["offset_mapping"]
    labels = [IGNORE_INDEX] * len(ids)
    inserts = []  # positions (in ids) before which an end-of-turn token is inserted
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = _render(tok, messages[:i], True)
        upto = _render(tok, messages[: i + 1], False)
        assert text.startswith(prompt)
        a = len(prompt)
        b = len(upto)
        if not text.startswith(upto):  # a closing suffix that later messages replace
            b = next(k for k in range(a, len(upto)) if k >= len(text) or text[k] != upto[k])
            b = _special_start(tok, upto, b)
        assert m["content"].strip().split("\n")[0] in text[a:b]
        inside = [k for k, (s, e) in enumerate(offsets) if a <= s and e <= b and e > s]
        # the tokenization must not merge across the span's edges
        assert all(e <= a or s >= b or k in inside for k, (s, e) in enumerate(offsets) if e > s)
        for k in inside:
            labels[k] = ids[k]
        if eot not in [ids[k] for k in inside]:
            after = inside[-1] + 1
            if i < len(messages) - 1 and after < len(ids) and ids[after] == eot:
                labels[after] = eot  # the template writes it first thing in the next prompt
            else:
                inserts.append(after)
    for at in reversed(inserts):
        ids.insert(at, eot)
        labels.insert(at, eot)
    return ids, labels, inserts


# Published templates that are not prefix-preserving for one conversation: Mistral
# v0.3 and Mistral-Nemo write the system message into the *last* user message
# only, so it vanishes from the rendering once an answer follows. gradwise
# refuses such an example with a DataError (test_refused_conversations).
REFUSED = {("mistral-7b-instruct-v0.3", "system"), ("mistral-nemo-instruct-2407", "system")}


def _setup(tokenizer_cache, stem, kind, name):
    if (stem, name) in REFUSED:
        pytest.skip("not prefix-preserving as published; see test_refused_conversations")
    tok = tokenizer_cache(stem, kind)
    msgs = _messages(tok, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = tokenize_example(Example(msgs), TokenizerTemplate(tok), unstable="error")
    return tok, msgs, got


CASES = [(s, k, c) for s in STEMS for k in TOKENIZERS for c in CONVERSATIONS]


def test_the_corpus_has_20_templates_from_10_families_each_credited():
    assert len(STEMS) >= 20
    assert len({m["model"].split("/")[0] for m in MANIFESTS.values()}) >= 10  # model makers
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for stem, m in MANIFESTS.items():
        text = (DATA / m["template"]).read_bytes()
        assert hashlib.sha256(text).hexdigest() == m["sha256"], stem  # verbatim, unchanged
        assert m["special_tokens"]["end_of_turn"], stem
        assert {"repository", "path", "commit", "license"} <= set(m["source"]), stem
        assert m["template"] in readme and m["model"] in readme, stem
        assert m["source"]["commit"] in readme, stem


@pytest.mark.parametrize("stem", STEMS)
def test_end_of_turn_token_is_detected(tokenizer_cache, stem):
    tok = tokenizer_cache(stem, "bpe300")
    want = tok.convert_tokens_to_ids(MANIFESTS[stem]["special_tokens"]["end_of_turn"])
    assert end_of_turn_id(TokenizerTemplate(tok)) == want


@pytest.mark.parametrize(("stem", "kind", "name"), CASES)
def test_labels_are_the_assistant_spans_by_offsets(tokenizer_cache, stem, kind, name):
    tok, msgs, got = _setup(tokenizer_cache, stem, kind, name)
    ids, labels, _ = reference(tok, msgs, _eot(tok, stem))
    assert got.input_ids == ids
    assert got.labels == labels
    # the labelled text holds every answer and no user or system message
    runs = _labelled_runs(tok, got)
    answers = [m["content"] for m in msgs if m["role"] == "assistant"]
    assert len(runs) == len(answers)
    for run, answer in zip(runs, answers):
        assert answer.strip().split("\n")[-1] in run
        assert not any(m["content"] in run for m in msgs if m["role"] != "assistant")


@pytest.mark.parametrize(("stem", "kind", "name"), CASES)
def test_every_trained_answer_ends_with_a_labelled_stop_token(tokenizer_cache, stem, kind, name):
    tok, msgs, got = _setup(tokenizer_cache, stem, kind, name)
    eot = _eot(tok, stem)
    specials = set(tok.all_special_ids)
    runs = _labelled_index_runs(got)
    assert len(runs) == sum(m["role"] == "assistant" for m in msgs)
    for run in runs:
        ids = [got.input_ids[k] for k in run]
        assert eot in ids
        # after the stop token only whitespace or special tokens (a closing suffix)
        tail = ids[ids.index(eot) + 1 :]
        assert all(t in specials or not tok.decode([t]).strip() for t in tail), tok.decode(tail)


@pytest.mark.parametrize(("stem", "kind", "name"), CASES)
def test_input_ids_are_apply_chat_template_plus_only_the_appended_stops(
    tokenizer_cache, stem, kind, name
):
    tok, msgs, got = _setup(tokenizer_cache, stem, kind, name)
    hf = _ids(tok.apply_chat_template(msgs, tokenize=True))
    eot = _eot(tok, stem)
    _, _, inserts = reference(tok, msgs, eot)
    # removing the inserted positions gives back exactly transformers' ids
    shifted = [at + j for j, at in enumerate(inserts)]
    assert all(got.input_ids[k] == eot for k in shifted)
    assert [t for k, t in enumerate(got.input_ids) if k not in set(shifted)] == hf
    assert len(got.input_ids) - len(hf) == len(inserts)


@pytest.mark.parametrize(("stem", "name"), sorted(REFUSED))
def test_refused_conversations(tokenizer_cache, stem, name):
    tok = tokenizer_cache(stem, "bpe300")
    msgs = CONVERSATIONS[name]
    # as published, the system message is rendered only while the user message is last
    assert SYSTEM["content"] in _render(tok, msgs[:2], True)
    assert SYSTEM["content"] not in _render(tok, msgs, False)
    with pytest.raises(DataError, match="not prefix-preserving"):
        tokenize_example(Example(msgs), TokenizerTemplate(tok))


# Published templates that leave an answer without its end-of-turn token: the
# Qwen1.5-style template writes <|im_end|> only when more messages follow, and
# falcon-7b-instruct never writes its EOS. (stem, conversation) -> how many stop
# tokens gradwise appends, and how many it labels where the template wrote them.
OPEN = {
    ("qwen-1.5-finguai-chat-v1", "single"): (1, 0, "writes it only when more messages follow"),
    ("qwen-1.5-finguai-chat-v1", "multi"): (1, 1, "writes it only when more messages follow"),
    ("falcon-7b-instruct", "multi"): (2, 0, "does not write it after an answer"),
}


@pytest.mark.parametrize(("stem", "name"), sorted(OPEN))
def test_open_answers_are_closed_with_one_warning(tokenizer_cache, stem, name, monkeypatch):
    from gradwise.instruct import _stop

    monkeypatch.setattr(_stop, "_WARNED", set())
    n_insert, n_labelled_in_prompt, behaviour = OPEN[(stem, name)]
    tok = tokenizer_cache(stem, "bpe300")
    msgs = CONVERSATIONS[name]
    eot = _eot(tok, stem)
    hf = _ids(tok.apply_chat_template(msgs, tokenize=True))
    template = TokenizerTemplate(tok)
    with pytest.warns(UserWarning, match=behaviour):
        got = tokenize_example(Example(msgs), template)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per template and behaviour
        tokenize_example(Example(msgs), template)
    assert len(got.input_ids) - len(hf) == n_insert
    assert got.labels[-1] == eot  # the final answer ends with a labelled stop token
    # a stop token the template wrote in the next prompt is labelled where it stands
    in_prompt = [
        k for k, t in enumerate(hf) if t == eot and got.labels[k] == eot and got.input_ids[k] == eot
    ]
    assert len(in_prompt) == n_labelled_in_prompt
    # close_turns=False keeps transformers' ids and labels the template's own tokens
    kept = tokenize_example(Example(msgs), template, close_turns=False)
    assert kept.input_ids == hf
    assert eot not in [t for t, lbl in zip(kept.input_ids, kept.labels) if lbl != IGNORE_INDEX]


def _labelled_index_runs(t):
    runs, cur = [], []
    for k, lbl in enumerate(t.labels):
        if lbl != IGNORE_INDEX:
            cur.append(k)
        elif cur:
            runs.append(cur)
            cur = []
    return runs + ([cur] if cur else [])


def _labelled_runs(tok, t):
    return [tok.decode([t.input_ids[k] for k in run]) for run in _labelled_index_runs(t)]


def _examples(tokenizer_cache, stem):
    tok = tokenizer_cache(stem, "bpe700")
    out = []
    template = TokenizerTemplate(tok)
    for name, msgs in CONVERSATIONS.items():
        if (stem, name) in REFUSED:
            continue
        try:
            _render(tok, msgs, False)
        except Exception:  # a template that refuses a system message
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out.append(tokenize_example(Example(msgs), template))
    return tok, out


@pytest.mark.parametrize("stem", STEMS)
def test_packed_row_gives_each_example_its_labels_and_positions(tokenizer_cache, stem):
    tok, exs = _examples(tokenizer_cache, stem)
    batch = collate_packed([exs], pad_id=tok.pad_token_id, attention="block_mask")
    start = 0
    for ex in exs:
        n = len(ex)
        assert batch["input_ids"][0, start : start + n].tolist() == ex.input_ids
        assert batch["position_ids"][0, start : start + n].tolist() == list(range(n))
        # the first label of each example is dropped (it would be predicted across examples)
        assert batch["labels"][0, start : start + n].tolist() == [IGNORE_INDEX] + ex.labels[1:]
        seg = batch["attention_mask"][0, 0, start : start + n]
        assert (seg[:, start : start + n].tril() == 0).all()  # sees its own past
        assert (seg[:, :start] < 0).all() and (seg[:, start + n :] < 0).all()  # nothing else
        start += n


LOGIT_STEMS = [
    "llama-3-8b-instruct",
    "qwen-1.5-finguai-chat-v1",
    "gemma-3-1b-it",
    "mistral-nemo-instruct-2407",
]


@pytest.mark.parametrize("mode", ["block_mask", "varlen"])
@pytest.mark.parametrize("stem", LOGIT_STEMS)
def test_packed_logits_equal_each_example_alone(tokenizer_cache, model_factory, stem, mode):
    tok, exs = _examples(tokenizer_cache, stem)
    model = model_factory(tok, "llama", seed=1)
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([ex.input_ids])).logits[0] for ex in exs]
        with packed_attention(model, mode) as pa:
            batch = collate_packed([exs], pad_id=tok.pad_token_id, attention=pa.mode)
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            packed = model(**inputs, use_cache=False).logits[0]
    start = 0
    for ex, ref in zip(exs, alone):
        torch.testing.assert_close(packed[start : start + len(ex)], ref, rtol=1e-5, atol=1e-5)
        start += len(ex)


def test_recipe_default_template_is_the_models_own_else_chatml(tokenizer_cache, tokenizer):
    from gradwise.instruct import ChatMLTemplate, InstructConfig, _templates, get_template

    cfg = InstructConfig.model_validate({"model": {"path": "m"}, "data": {"train": "t.jsonl"}})
    assert cfg.data.template == "auto"
    # a model that publishes a chat template trains on it, without a warning
    tok = tokenizer_cache("llama-3-8b-instruct", "bpe300")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = get_template(cfg.data.template, tok)
    assert isinstance(got, TokenizerTemplate) and got.chat_template == tok.chat_template
    # a base model (no chat template) gets ChatML, with one warning that says so
    base = copy.deepcopy(tokenizer)
    base.chat_template = None
    base.name_or_path = "a-base-model-for-the-default-test"
    _templates._WARNED_DEFAULT.discard(base.name_or_path)
    with pytest.warns(UserWarning, match="no chat template .* using the default 'chatml'"):
        got = get_template(cfg.data.template, base)
    assert isinstance(got, ChatMLTemplate)


# Corpus templates that TRL 1.16 stores byte for byte as "original" templates
# (trl/chat_templates), with a marked training copy for assistant_only_loss.
TRL_ORIGINALS = {
    "cohere-aya-expanse-8b": "cohere",
    "gemma-2-2b-it": "gemma",
    "gemma-3-1b-it": "gemma3",
    "llama-3-8b-instruct": "llama3",
    "llama-3.1-8b-instruct": "llama3_1",
    "phi-3-mini-4k-instruct": "phi3",
    "phi-3.5-mini-instruct": "phi3_5",
    "qwen-2.5-3b-instruct": "qwen2_5",
}


@pytest.mark.parametrize("stem", sorted(TRL_ORIGINALS))
def test_corpus_templates_equal_trls_stored_originals(stem):
    trl = pytest.importorskip("trl")
    stored = pathlib.Path(trl.__file__).parent / "chat_templates" / f"{TRL_ORIGINALS[stem]}.jinja"
    assert (DATA / MANIFESTS[stem]["template"]).read_bytes() == stored.read_bytes()


# TRL 1.16 has no training copy of Llama 3.1's template (it raises for it)
TRL_MASKABLE = sorted(set(TRL_ORIGINALS) - {"llama-3.1-8b-instruct"})


@pytest.mark.parametrize("name", ["multi", "system"])
@pytest.mark.parametrize("stem", TRL_MASKABLE)
def test_labels_equal_trls_assistant_masks(tokenizer_cache, stem, name):
    """TRL as a second reference: its marked training copy's assistant token masks."""
    pytest.importorskip("trl")
    from trl.chat_template_utils import get_training_chat_template

    tok = tokenizer_cache(stem, "bpe700")
    training = get_training_chat_template(tok)
    assert training is not None and "generation" in training
    msgs = _messages(tok, name)
    out = tok.apply_chat_template(
        msgs,
        chat_template=training,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ours = tokenize_example(Example(msgs), TokenizerTemplate(tok))
    assert ours.input_ids == list(out["input_ids"])
    mask = [lbl != IGNORE_INDEX for lbl in ours.labels]
    differ = [k for k, (a, b) in enumerate(zip(mask, out["assistant_masks"])) if a != bool(b)]
    if stem == "qwen-2.5-3b-instruct":
        # TRL's marked Qwen2.5 copy opens {% generation %} before the "\n" after
        # "<|im_start|>assistant": part of the generation prompt, which we do not train
        assert len(differ) == sum(m["role"] == "assistant" for m in msgs)
        for k in differ:
            assert not mask[k] and tok.decode([ours.input_ids[k]]) == "\n"
    else:
        assert differ == []
