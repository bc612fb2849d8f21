"""Our response-only labels against TRL's ``SFTTrainer`` dataset preparation.

TRL builds labels in two ways: ``completion_only_loss`` for prompt/completion
data (the completion starts where the tokenized prompt and prompt+completion
diverge) and ``assistant_only_loss`` for conversations, which needs a chat
template with ``{% generation %}`` markers; TRL swaps in its own marked
"training" copy of each template it knows. We render prefixes of the
*original* template instead, and must find the same tokens.
"""

from __future__ import annotations

import logging
import pathlib

import pytest

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from gradwise.errors import DataError  # noqa: E402
from gradwise.instruct import Example, get_template, tokenize_example  # noqa: E402

TEMPLATES = pathlib.Path(trl.__file__).parent / "chat_templates"

# special tokens (and BOS) each template needs from the tokenizer
SPECIALS = {
    "llama3": (
        ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "<|begin_of_text|>",
    ),
    "qwen2_5": (["<|im_start|>", "<|im_end|>"], None),
    "qwen3": (["<|im_start|>", "<|im_end|>", "<think>", "</think>"], None),
    "qwen3_instruct_2507": (["<|im_start|>", "<|im_end|>"], None),
    "phi3": (["<|user|>", "<|assistant|>", "<|end|>", "<|system|>"], None),
    "gemma": (["<bos>", "<start_of_turn>", "<end_of_turn>"], "<bos>"),
    "gemma3": (["<bos>", "<start_of_turn>", "<end_of_turn>"], "<bos>"),
    "cohere": (
        [
            "<BOS_TOKEN>",
            "<|START_OF_TURN_TOKEN|>",
            "<|END_OF_TURN_TOKEN|>",
            "<|USER_TOKEN|>",
            "<|CHATBOT_TOKEN|>",
            "<|SYSTEM_TOKEN|>",
        ],
        "<BOS_TOKEN>",
    ),
    "lfm2": (["<|startoftext|>", "<|im_start|>", "<|im_end|>"], "<|startoftext|>"),
}

MULTI_TURN = [
    {"role": "user", "content": "hello world"},
    {"role": "assistant", "content": "Hello! How are you?"},
    {"role": "user", "content": "the quick fox"},
    {"role": "assistant", "content": "jumps over the lazy dog."},
]


def _trl_dataset(model, tokenizer, rows, tmp_path, **config):
    from trl import SFTConfig, SFTTrainer

    logging.getLogger("trl").setLevel(logging.ERROR)
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_length=None,
        report_to=[],
        use_cpu=True,
        dataset_kwargs={},
        **config,
    )
    ds = datasets.Dataset.from_list(rows)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    return [(r["input_ids"], r["labels"]) for r in trainer.train_dataset]


def _tok_for(name, special_tokenizer, tokenizer, template=None):
    tokens, bos = SPECIALS[name]
    jinja = (TEMPLATES / f"{template or name}.jinja").read_text()
    return special_tokenizer(tokenizer, tokens, bos=bos, chat_template=jinja)


@pytest.mark.parametrize(
    "name", ["llama3", "phi3", "gemma", "gemma3", "qwen3_instruct_2507", "cohere", "lfm2"]
)
def test_multi_turn_labels_equal_trl_assistant_only_loss(
    name, special_tokenizer, tokenizer, model_factory, tmp_path
):
    tok = _tok_for(name, special_tokenizer, tokenizer)
    [(ids, labels)] = _trl_dataset(
        model_factory(tok), tok, [{"messages": MULTI_TURN}], tmp_path, assistant_only_loss=True
    )
    ours = tokenize_example(Example(MULTI_TURN), get_template("tokenizer", tok))
    assert ours.input_ids == ids
    assert ours.labels == labels


def test_qwen2_5_differs_only_by_the_generation_prompt_newline(
    special_tokenizer, tokenizer, model_factory, tmp_path
):
    # TRL's marked Qwen2.5 template opens {% generation %} before the "\n" that
    # follows "<|im_start|>assistant", so TRL trains that "\n"; it belongs to
    # the generation prompt (the model is given it at inference), so we don't.
    tok = _tok_for("qwen2_5", special_tokenizer, tokenizer)
    [(ids, labels)] = _trl_dataset(
        model_factory(tok), tok, [{"messages": MULTI_TURN}], tmp_path, assistant_only_loss=True
    )
    ours = tokenize_example(Example(MULTI_TURN), get_template("tokenizer", tok))
    assert ours.input_ids == ids
    differ = [i for i, (a, b) in enumerate(zip(ours.labels, labels)) if a != b]
    assert len(differ) == 2
    for i in differ:
        assert ours.labels[i] == -100 and tok.decode([ids[i]]) == "\n"
        assert tok.decode(ids[:i]).endswith("<|im_start|>assistant")


def test_qwen3_think_template_is_rejected_but_its_trl_training_copy_matches(
    special_tokenizer, tokenizer, model_factory, tmp_path
):
    # Qwen3's template renders an empty think block in the last turn only, so
    # it is not prefix-preserving; TRL patches it with a training copy.
    tok = _tok_for("qwen3", special_tokenizer, tokenizer)
    with pytest.raises(DataError, match="not prefix-preserving"):
        tokenize_example(Example(MULTI_TURN), get_template("tokenizer", tok))
    [(ids, labels)] = _trl_dataset(
        model_factory(tok), tok, [{"messages": MULTI_TURN}], tmp_path, assistant_only_loss=True
    )
    patched = _tok_for("qwen3", special_tokenizer, tokenizer, template="qwen3_training")
    ours = tokenize_example(Example(MULTI_TURN), get_template("tokenizer", patched))
    assert (ours.input_ids, ours.labels) == (ids, labels)


def test_alpaca_equals_trl_completion_only_loss(tokenizer, model_factory, tmp_path):
    tpl = get_template("alpaca", tokenizer)
    examples = [
        Example.from_alpaca("Reverse the word: cat", "tac"),
        Example.from_alpaca("Sort the letters.", "the lazy dog", "dog lazy the"),
        Example.from_alpaca("hello world", " How are you?"),  # a leading space merges
    ]
    rows = [
        {"prompt": tpl.render(ex.prompt_messages, True), "completion": ex.response}
        for ex in examples
    ]
    trl_rows = _trl_dataset(model_factory(tokenizer), tokenizer, rows, tmp_path)
    for ex, (ids, labels) in zip(examples, trl_rows):
        ours = tokenize_example(ex, tpl, unstable="error") if ex.response[0] != " " else None
        if ours is None:
            # TRL keeps the merged tokenization (common prefix); ours keeps the
            # prompt's own tokens: both label every token of the answer.
            ours = tokenize_example(ex, tpl)
            assert tokenizer.decode([i for i, lbl in zip(ids, labels) if lbl != -100]).endswith(
                " How are you?<|endoftext|>"
            )
            assert tokenizer.decode(ours.input_ids[ours.prompt_length :]) == (
                " How are you?<|endoftext|>"
            )
            continue
        assert (ours.input_ids, ours.labels) == (ids, labels)


def test_chatml_equals_trl_conversational_prompt_completion(tokenizer, model_factory, tmp_path):
    # the base tokenizer's own template is ChatML, so TRL renders what ours renders
    examples = [
        Example(
            [
                {"role": "user", "content": "Reverse the word: cat"},
                {"role": "assistant", "content": "tac"},
            ]
        ),
        Example(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello world"},
                {"role": "assistant", "content": "Hello! How are you?"},
            ]
        ),
    ]
    rows = [{"prompt": ex.prompt_messages, "completion": ex.messages[-1:]} for ex in examples]
    trl_rows = _trl_dataset(model_factory(tokenizer), tokenizer, rows, tmp_path)
    tpl = get_template("chatml", tokenizer)
    for ex, (ids, labels) in zip(examples, trl_rows):
        ours = tokenize_example(ex, tpl)
        assert (ours.input_ids, ours.labels) == (ids, labels)
