"""Instruction tuning of causal language models.

Instruction tuning fine-tunes a pretrained language model on (instruction,
response) pairs so that it follows natural-language directions. This package
holds the pieces; the ``sft`` recipe (:mod:`gradwise.recipes.instruct`)
joins them with the gradwise Trainer and LoRA:

* data: :func:`read_jsonl` (alpaca, messages or ShareGPT JSONL, errors by line number);
* templates: :func:`get_template` (``alpaca``, ``chatml``, the tokenizer's own);
* labels on the response only: :func:`tokenize_example` (prefix rendering,
  no ``{% generation %}`` markers needed);
* packing without cross-talk: :func:`pack`, :func:`collate_packed`, and
  :func:`packed_attention` for a model in your own training loop;
* :func:`generate` (the model's own ``generate`` with a
  :func:`generation_config`: greedy, temperature, top-k, top-p) and :func:`evaluate`
  (exact match, response-token accuracy);
* a tiny base model built offline: :func:`init_base`, and the task
  generators of the demo: :data:`TASKS`, :func:`instruction_set`,
  :func:`instruction_splits`.

>>> from gradwise.instruct import Example, tokenize_example, get_template
>>> ex = Example.from_alpaca("Reverse the word: cat", "tac")
>>> ex.response
'tac'
"""

from gradwise.instruct._attention import PackedAttention, packed_attention
from gradwise.instruct._base import BaseModelInfo, init_base, pretrain, tiny_config, train_tokenizer
from gradwise.instruct._base_cache import cache_dir, cached_base, recipe_key
from gradwise.instruct._config import InstructConfig
from gradwise.instruct._data import Example, InstructData, parse_records, read_jsonl, write_jsonl
from gradwise.instruct._evaluate import EvalResult, evaluate, exact_match
from gradwise.instruct._generate import generate, generation_config, top_k_filter, top_p_filter
from gradwise.instruct._loss import causal_lm_loss, token_accuracy, token_losses
from gradwise.instruct._masking import (
    IGNORE_INDEX,
    TokenizedExample,
    TokenizeStats,
    render_boundaries,
    tokenize_dataset,
    tokenize_example,
    truncate,
)
from gradwise.instruct._packing import (
    block_causal_mask,
    collate_packed,
    collate_padded,
    make_loader,
    pack,
)
from gradwise.instruct._tasks import (
    TASKS,
    Task,
    corpus,
    instruction_set,
    instruction_splits,
    task_of,
)
from gradwise.instruct._templates import (
    TEMPLATES,
    AlpacaTemplate,
    ChatMLTemplate,
    TokenizerTemplate,
    get_template,
)

__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "TEMPLATES",
    "AlpacaTemplate",
    "BaseModelInfo",
    "ChatMLTemplate",
    "EvalResult",
    "Example",
    "InstructConfig",
    "InstructData",
    "PackedAttention",
    "Task",
    "TokenizeStats",
    "TokenizedExample",
    "TokenizerTemplate",
    "block_causal_mask",
    "cache_dir",
    "cached_base",
    "causal_lm_loss",
    "collate_packed",
    "collate_padded",
    "corpus",
    "evaluate",
    "exact_match",
    "generate",
    "generation_config",
    "get_template",
    "init_base",
    "instruction_set",
    "instruction_splits",
    "make_loader",
    "pack",
    "packed_attention",
    "parse_records",
    "pretrain",
    "read_jsonl",
    "recipe_key",
    "render_boundaries",
    "task_of",
    "tiny_config",
    "tokenize_dataset",
    "tokenize_example",
    "token_accuracy",
    "token_losses",
    "top_k_filter",
    "top_p_filter",
    "train_tokenizer",
    "truncate",
    "write_jsonl",
]
