"""Prompt templates: how a conversation becomes the text a causal LM reads.

A template is anything with ``render(messages, add_generation_prompt) -> str``
and ``encode(tokenizer, text) -> list[int]``. Three are built in:

``alpaca``
    The Stanford Alpaca format (``### Instruction:`` / ``### Input:`` /
    ``### Response:``); the response ends with the tokenizer's EOS token.
``chatml``
    ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message; the model stops
    by writing ``<|im_end|>``, which the tokenizer must know as a token.
``tokenizer``
    The tokenizer's own Jinja chat template (``tokenizer.chat_template``),
    rendered with ``apply_chat_template(..., tokenize=False)``.
``auto``
    ``tokenizer`` when the tokenizer has a chat template; otherwise (a base
    model) the documented default, ``chatml``, with one warning saying so.

Which tokens are trained is not part of the template: it is derived by
rendering the conversation prefix by prefix (see :mod:`._masking`), so any
template works without ``{% generation %}`` markers.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

from gradwise.errors import ConfigError, unknown

TEMPLATES = ("alpaca", "chatml", "tokenizer", "auto")
#: the template a tokenizer without a chat template gets under ``"auto"``
DEFAULT_TEMPLATE = "chatml"
_WARNED_DEFAULT: set[str] = set()

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)


class Template(Protocol):
    name: str

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str: ...

    def encode(self, text: str, *, first: bool = True) -> list[int]: ...

    def stop_ids(self) -> list[int]: ...


def _special_prefix(tokenizer: Any) -> list[int]:
    """Token ids the tokenizer puts before any text by default (e.g. BOS), found by probing."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return list(full[:i])
    return []


class _TextTemplate:
    """Shared encoding of the built-in templates: the tokenizer's usual prefix, then the text.

    A suffix the tokenizer would append (some add EOS after every text) is left
    out: it would sit after every prefix rendering and break prefix diffing;
    templates write their end-of-response token explicitly.
    """

    name = "text"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._prefix = _special_prefix(tokenizer)

    def encode(self, text: str, *, first: bool = True) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._prefix + ids if first else ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        out = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [self._prefix + list(ids) for ids in out]

    def stop_ids(self) -> list[int]:
        eos = self.tokenizer.eos_token_id
        return [eos] if eos is not None else []


class AlpacaTemplate(_TextTemplate):
    """Stanford Alpaca prompt format; later turns repeat the instruction/response blocks.

    >>> class Tok:  # the smallest tokenizer-like object
    ...     eos_token, eos_token_id = "</s>", 2
    ...     def __call__(self, t, add_special_tokens=True): return {"input_ids": [0]}
    >>> t = AlpacaTemplate(Tok())
    >>> print(t.render([{"role": "user", "content": "Say hi"}], add_generation_prompt=True))
    Below is an instruction that describes a task. Write a response that appropriately completes the request.
    <BLANKLINE>
    ### Instruction:
    Say hi
    <BLANKLINE>
    ### Response:
    <BLANKLINE>
    """

    name = "alpaca"

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        # decided by the first instruction alone, so that later turns never change
        # how earlier ones render (prefix rendering relies on it)
        first_user = next((m for m in messages if m["role"] == "user"), {})
        has_input = bool(first_user.get("input"))
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        if system is None:
            system = ALPACA_PREAMBLE_INPUT if has_input else ALPACA_PREAMBLE
        out = [system + "\n\n"]
        eos = self.tokenizer.eos_token or ""
        for m in messages:
            if m["role"] == "user":
                instruction = m.get("instruction", m["content"])
                out.append(f"### Instruction:\n{instruction}\n\n")
                if m.get("input"):
                    out.append(f"### Input:\n{m['input']}\n\n")
            elif m["role"] == "assistant":
                # the EOS token is what teaches the model to stop
                out.append(f"### Response:\n{m['content']}{eos}\n\n")
        if add_generation_prompt:
            out.append("### Response:\n")
        text = "".join(out)
        # a finished conversation ends right after the EOS of its last response
        return text if add_generation_prompt else text.removesuffix("\n\n")


class ChatMLTemplate(_TextTemplate):
    """ChatML: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message.

    The end-of-turn marker ``<|im_end|>`` must be a single token of the
    tokenizer (an added special token); it is also a stop token for generation.
    """

    name = "chatml"
    START, END = "<|im_start|>", "<|im_end|>"

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer)
        ids = tokenizer(self.END, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ConfigError(
                f"template 'chatml' needs {self.END!r} to be one token of the tokenizer, but it "
                f"encodes to {len(ids)} tokens; add it as a special token or use template 'alpaca'"
            )
        self._end_id = ids[0]

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        out = [f"{self.START}{m['role']}\n{m['content']}{self.END}\n" for m in messages]
        if add_generation_prompt:
            out.append(f"{self.START}assistant\n")
        return "".join(out)

    def stop_ids(self) -> list[int]:
        return sorted({self._end_id, *super().stop_ids()})


class TokenizerTemplate:
    """The tokenizer's own Jinja chat template (``tokenizer.chat_template``).

    The rendered text carries every special token itself (a BOS included), so
    it is encoded without adding special tokens, as ``apply_chat_template`` does.
    """

    name = "tokenizer"

    def __init__(self, tokenizer: Any, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        if not self.chat_template:
            raise ConfigError(
                "template 'tokenizer': this tokenizer has no chat_template; "
                "use template 'alpaca' or 'chatml', or set tokenizer.chat_template"
            )

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        return self.tokenizer.apply_chat_template(
            plain,
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )

    def encode(self, text: str, *, first: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [list(x) for x in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def stop_ids(self) -> list[int]:
        ids = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        # end-of-turn markers that common templates close an assistant turn with
        vocab = self.tokenizer.get_vocab()
        for marker in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"):
            if marker in vocab and marker in self.chat_template:
                ids.add(vocab[marker])
        return sorted(ids)


def get_template(name: str | Template, tokenizer: Any) -> Template:
    """A template by name (``alpaca``, ``chatml``, ``tokenizer``, ``auto``); an object passes through.

    ``"auto"`` takes the tokenizer's own chat template when it has one and
    otherwise falls back to ChatML (:data:`DEFAULT_TEMPLATE`), warning once per
    tokenizer (by ``name_or_path``) in this process. ChatML needs ``<|im_end|>``
    to be one token: add ``<|im_start|>`` and ``<|im_end|>`` as special tokens
    to a base tokenizer (and resize the model's embeddings) before using it.
    """
    if not isinstance(name, str):
        return name
    if name == "auto":
        if getattr(tokenizer, "chat_template", None):
            return TokenizerTemplate(tokenizer)
        key = str(getattr(tokenizer, "name_or_path", "") or id(tokenizer))
        if key not in _WARNED_DEFAULT:
            _WARNED_DEFAULT.add(key)
            warnings.warn(
                f"template 'auto': the tokenizer {key!r} has no chat template (a base model); "
                f"using the default {DEFAULT_TEMPLATE!r} (<|im_start|>role\\ncontent<|im_end|>). "
                "Set template: chatml (or alpaca) to choose it explicitly and silence this.",
                UserWarning,
                stacklevel=2,
            )
        return ChatMLTemplate(tokenizer)
    if name == "alpaca":
        return AlpacaTemplate(tokenizer)
    if name == "chatml":
        return ChatMLTemplate(tokenizer)
    if name == "tokenizer":
        return TokenizerTemplate(tokenizer)
    raise unknown("template", name, TEMPLATES)
