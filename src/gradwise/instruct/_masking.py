"""Tokenize a conversation with labels on the assistant's tokens only.

The loss of supervised fine-tuning is the negative log-likelihood of the
response given the prompt:

    L = -(1/|A|) · Σ_{t ∈ A} log p(x_t | x_<t)

where ``A`` holds the positions of assistant tokens. Every other position
(system, user, the template's own markup before a response, padding) gets
the label ``-100``, which ``cross_entropy(ignore_index=-100)`` skips.

Which tokens belong to an assistant turn is found without any template
markers: for the ``j``-th assistant message at index ``i`` the conversation is
rendered twice, ``messages[:i]`` with the generation prompt (the text a model
is given before it answers) and ``messages[:i+1]`` without it. Each rendering
must extend the one before (the template is *prefix-preserving*); the tokens
that the longer rendering adds are the turn's response, end-of-turn token
included, so the model learns to stop. A template may close a finished
conversation with a suffix that later messages replace (phi-3 appends EOS);
that suffix is trained after the final turn only. An answer that the
template leaves without its end-of-turn token still gets one, labelled
(see :mod:`._stop`; ``close_turns=False`` turns that off).

Tokenizers can merge characters across such a boundary, so the ids of a
prefix are not always a prefix of the ids of the whole (the tokenization is
not *prefix-stable*). Then ``unstable="split"`` (the default) tokenizes each
rendered segment on its own and concatenates them: the prompt is tokenized
exactly as it is at inference time, when the model continues a prompt
tokenized alone. ``unstable="error"`` rejects such examples instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from gradwise.errors import DataError
from gradwise.instruct._data import Example
from gradwise.instruct._stop import close_answers, end_of_turn_id, warn_once

IGNORE_INDEX = -100
Truncation = Literal["keep_response", "keep_start", "keep_end"]
Unstable = Literal["split", "error"]
AssistantTurns = Literal["all", "last"]


@dataclass
class TokenizedExample:
    """Token ids and labels of one conversation (``-100`` where no loss is taken).

    ``prompt_length`` is the number of tokens before the final response: the
    prompt a model is given at inference time is ``input_ids[:prompt_length]``.
    """

    input_ids: list[int]
    labels: list[int]
    prompt_length: int
    line: int | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_labels(self) -> int:
        return sum(lbl != IGNORE_INDEX for lbl in self.labels)


@dataclass
class TokenizeStats:
    """What happened while tokenizing a dataset."""

    n_examples: int = 0
    n_split: int = 0  # not prefix-stable, tokenized segment by segment
    n_truncated: int = 0
    dropped: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)


def _first_difference(a: str, b: str) -> int:
    n = min(len(a), len(b))
    return next((k for k in range(n) if a[k] != b[k]), n)


def _special_start(text: str, at: int, template: Any) -> int:
    """Move ``at`` back to the start of a special token that it falls inside of.

    ``"<|end|>"`` and ``"<|user|>"`` share the characters ``"<|"``; a
    character diff would split the token, a closing suffix must not.
    """
    tokenizer = getattr(template, "tokenizer", None)
    specials = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    for tok in specials:
        for j in range(1, len(tok)):
            if at - j >= 0 and text.startswith(tok, at - j):
                return at - j
    return at


def render_boundaries(
    example: Example, template: Any, assistant_turns: AssistantTurns = "all"
) -> tuple[list[str], list[bool]]:
    """The prefix renderings of a conversation and whether each segment is trained.

    Returns ``(texts, trained)``: ``texts[k]`` is a rendering of a prefix of
    the conversation and extends ``texts[k - 1]``; segment ``k`` is the text
    ``texts[k][len(texts[k - 1]):]`` (segment 0 is ``texts[0]``) and
    ``trained[k]`` says whether its tokens get labels.
    """
    msgs = example.messages
    turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    if not turns:
        raise DataError(f"{example.where()}: no assistant message, so there is nothing to learn")
    texts: list[str] = []
    trained: list[bool] = []
    names: list[str] = []
    for j, i in enumerate(turns):
        texts += [template.render(msgs[:i], True), template.render(msgs[: i + 1], False)]
        trained += [False, assistant_turns == "all" or j == len(turns) - 1]
        names += [f"the prompt of assistant turn {j + 1}", f"assistant turn {j + 1}"]
    if turns[-1] != len(msgs) - 1:  # messages after the last answer: context only
        texts.append(template.render(msgs, False))
        trained.append(False)
        names.append("the whole conversation")
    for k in range(1, len(texts)):
        if not texts[k].startswith(texts[k - 1]):
            at = _first_difference(texts[k - 1], texts[k])
            at = _special_start(texts[k - 1], at, template)
            closing = texts[k - 1][at:]
            if k % 2 == 0 and closing and at >= len(texts[k - 2]) and texts[-1].endswith(closing):
                # Some templates close a finished conversation with a suffix
                # (phi-3 appends EOS); it is absent when more messages follow,
                # so only the final turn is trained on it.
                texts[k - 1] = texts[k - 1][:at]
                continue
            raise DataError(
                f"{example.where()}: template {getattr(template, 'name', '?')!r} is not "
                f"prefix-preserving: the rendering up to {names[k - 1]} is not a prefix of the "
                f"rendering up to {names[k]} (they differ at character {at}: "
                f"{texts[k - 1][at : at + 20]!r} vs {texts[k][at : at + 20]!r}). Response-only labels "
                "need a template that renders earlier messages the same way whatever follows."
            )
    return texts, trained


def _encode_all(template: Any, texts: list[str]) -> list[list[int]]:
    if hasattr(template, "encode_batch"):
        return template.encode_batch(texts)
    return [template.encode(t) for t in texts]


def tokenize_example(
    example: Example,
    template: Any,
    *,
    max_length: int | None = None,
    truncation: Truncation = "keep_response",
    assistant_turns: AssistantTurns = "all",
    unstable: Unstable = "split",
    close_turns: bool = True,
    stats: TokenizeStats | None = None,
) -> TokenizedExample:
    """Token ids and response-only labels of one conversation.

    Args:
        example: the conversation.
        template: from :func:`~gradwise.instruct.get_template`.
        max_length: cut longer sequences to this many tokens.
        truncation: ``"keep_response"`` drops the oldest tokens and keeps the
            final response whole when it fits (else keeps the start),
            ``"keep_start"`` keeps the first and ``"keep_end"`` the last
            ``max_length`` tokens.
        assistant_turns: train on ``"all"`` assistant turns or the ``"last"``.
        unstable: ``"split"`` or ``"error"`` for a tokenization that is not
            prefix-stable (see the module docstring).
        close_turns: end every trained answer with a labelled end-of-turn
            token (the template's, else EOS; see :mod:`._stop`): labelled
            where the template writes it first thing after the answer,
            appended where it does not; a warning (once) names the template's
            behaviour. ``False`` keeps the template's tokens and labels.

    Example (labels are ``-100`` up to the response), with a toy
    tokenizer that maps each character to its code point::

        >>> from gradwise.instruct import get_template
        >>> class Chars:
        ...     eos_token, eos_token_id = "$", 36
        ...     def __call__(self, text, add_special_tokens=True):
        ...         ids = lambda t: [ord(c) for c in t]
        ...         return {"input_ids": ids(text) if isinstance(text, str) else list(map(ids, text))}
        >>> t = tokenize_example(Example.from_alpaca("hi", "yo"), get_template("alpaca", Chars()))
        >>> "".join(chr(i) for i in t.input_ids[t.prompt_length:])
        'yo$'
        >>> set(t.labels[: t.prompt_length])
        {-100}
    """
    texts, trained = render_boundaries(example, template, assistant_turns)
    ids = _encode_all(template, texts)
    stable = all(ids[k][: len(ids[k - 1])] == ids[k - 1] for k in range(1, len(ids)))
    if stable:
        bounds = [len(x) for x in ids]
        input_ids = ids[-1]
    else:
        k = next(k for k in range(1, len(ids)) if ids[k][: len(ids[k - 1])] != ids[k - 1])
        if unstable == "error":
            cut = len(texts[k - 1])
            raise DataError(
                f"{example.where()}: the tokenizer is not prefix-stable here: tokens merge across "
                f"the boundary {texts[k][max(0, cut - 15) : cut]!r} | {texts[k][cut : cut + 15]!r}, so "
                "the prompt's tokens differ alone and followed by the response. Pass "
                "unstable='split' to tokenize the segments separately (as at inference time)."
            )
        if unstable != "split":
            raise DataError(f"unstable must be 'split' or 'error', got {unstable!r}")
        pieces = [template.encode(texts[0])]
        pieces += [
            template.encode(texts[k][len(texts[k - 1]) :], first=False)
            for k in range(1, len(texts))
        ]
        input_ids, bounds = [], []
        for piece in pieces:
            input_ids += piece
            bounds.append(len(input_ids))
        if stats is not None:
            stats.n_split += 1
    labels = [IGNORE_INDEX] * len(input_ids)
    start = 0
    for end, train in zip(bounds, trained):
        if train:
            labels[start:end] = input_ids[start:end]
        start = end
    if close_turns:
        eot = end_of_turn_id(template)
        if eot is not None:
            input_ids, labels, bounds, behaviour = close_answers(
                input_ids, labels, bounds, trained, eot, IGNORE_INDEX
            )
            if behaviour is not None:
                warn_once(template, getattr(template, "tokenizer", None), eot, behaviour)
    # texts alternate (prompt, response) per assistant turn: the final response
    # starts where the last generation-prompt rendering ends
    n_turns = sum(m["role"] == "assistant" for m in example.messages)
    out = TokenizedExample(list(input_ids), labels, bounds[2 * (n_turns - 1)], example.line)
    if max_length is not None and len(out) > max_length:
        out = truncate(out, max_length, truncation)
        if stats is not None:
            stats.n_truncated += 1
    return out


def truncate(ex: TokenizedExample, max_length: int, mode: Truncation) -> TokenizedExample:
    """Cut an example to ``max_length`` tokens (see :func:`tokenize_example`)."""
    n = len(ex)
    if n <= max_length:
        return ex
    if mode == "keep_response":
        # the response (and what follows it) fits: drop the oldest context
        mode = "keep_end" if n - ex.prompt_length <= max_length else "keep_start"
    if mode == "keep_start":
        sl = slice(0, max_length)
        prompt_length = min(ex.prompt_length, max_length)
    elif mode == "keep_end":
        sl = slice(n - max_length, n)
        prompt_length = max(0, ex.prompt_length - (n - max_length))
    else:
        raise DataError(
            f"unknown truncation {mode!r}; allowed: keep_response, keep_start, keep_end"
        )
    return TokenizedExample(ex.input_ids[sl], ex.labels[sl], prompt_length, ex.line)


def tokenize_dataset(
    examples: Iterable[Example],
    template: Any,
    *,
    max_length: int | None = None,
    truncation: Truncation = "keep_response",
    assistant_turns: AssistantTurns = "all",
    unstable: Unstable = "split",
    close_turns: bool = True,
) -> tuple[list[TokenizedExample], TokenizeStats]:
    """Tokenize many examples; those left without a trained token are dropped and counted."""
    stats = TokenizeStats()
    out: list[TokenizedExample] = []
    for ex in examples:
        stats.n_examples += 1
        tok = tokenize_example(
            ex,
            template,
            max_length=max_length,
            truncation=truncation,
            assistant_turns=assistant_turns,
            unstable=unstable,
            close_turns=close_turns,
            stats=stats,
        )
        if tok.n_labels == 0:
            stats.dropped.append((ex.line, "no response token left after truncation"))
            continue
        out.append(tok)
    return out, stats
