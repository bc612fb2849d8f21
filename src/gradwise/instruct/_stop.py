"""Every trained answer ends with a labelled stop token.

A model learns to stop only if the token that ends an answer is trained.
Response-only labels take the tokens that each answer adds to the rendering
of the conversation, so a template that does not write its end-of-turn token
right after an answer leaves the answer open. Qwen1.5's template, for one,
writes ``<|im_end|>`` after an assistant turn only when more messages follow:
earlier answers get it in the next prompt (label ``-100``), the final answer
gets none at all.

:func:`end_of_turn_id` finds the template's end-of-turn token by rendering a
probe conversation (the first special token after the answer's text, else the
tokenizer's EOS). :func:`close_answers` then, for each trained answer without
it: labels the token when the template writes it first thing after the answer
(in the next prompt), else inserts it after the answer and labels it.
"""

from __future__ import annotations

import warnings
from typing import Any

_PROBE = [
    {"role": "user", "content": "PINGQ"},
    {"role": "assistant", "content": "PONGQ"},
    {"role": "user", "content": "PANGQ"},
]
_WARNED: set[tuple[str, str]] = set()


def _specials(tokenizer: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    if hasattr(tokenizer, "get_added_vocab"):
        out.update(tokenizer.get_added_vocab())
    eos = getattr(tokenizer, "eos_token", None)
    if eos and getattr(tokenizer, "eos_token_id", None) is not None:
        out.setdefault(eos, tokenizer.eos_token_id)
    return out


def end_of_turn_id(template: Any) -> int | None:
    """Id of the token that ends an assistant turn in ``template``.

    The first special token that the template writes after an answer's text
    (whitespace aside) in a probe conversation; else the tokenizer's EOS;
    ``None`` when there is neither.
    """
    cached = getattr(template, "_gw_end_of_turn", False)
    if cached is not False:
        return cached
    tokenizer = getattr(template, "tokenizer", None)
    specials = _specials(tokenizer)
    found = None
    for msgs in (_PROBE, _PROBE[:2]):
        try:
            text = template.render(msgs, False)
        except Exception:  # a template may refuse a probe shape; try the next one
            continue
        at = text.find("PONGQ")
        if at < 0:
            continue
        after = text[at + 5 :].lstrip()
        hits = [tok for tok in specials if tok and after.startswith(tok)]
        if hits:
            found = specials[max(hits, key=len)]
            break
    if found is None:
        found = getattr(tokenizer, "eos_token_id", None)
    try:
        template._gw_end_of_turn = found
    except AttributeError:  # a template with __slots__: detect each time
        pass
    return found


def close_answers(
    input_ids: list[int],
    labels: list[int],
    bounds: list[int],
    trained: list[bool],
    eot: int,
    ignore_index: int,
) -> tuple[list[int], list[int], list[int], str | None]:
    """Give every trained answer segment a labelled end-of-turn token ``eot``.

    Segment ``k`` is ``input_ids[bounds[k-1]:bounds[k]]``; answer segments
    are the odd ones (``texts`` alternate prompt, answer). Returns the new
    ``(input_ids, labels, bounds, behaviour)`` where ``behaviour`` names what
    the template did when something was fixed (``None`` when nothing was).
    """
    input_ids, labels, bounds = list(input_ids), list(labels), list(bounds)
    open_last = open_always = False
    k = 1
    while k < len(bounds):
        start, end = bounds[k - 1], bounds[k]
        if trained[k] and eot not in input_ids[start:end]:
            last = k == len(bounds) - 1
            if not last and end < len(input_ids) and input_ids[end] == eot:
                labels[end] = eot  # written first thing in the next prompt
                open_last = True
            else:
                input_ids.insert(end, eot)
                labels.insert(end, eot)
                bounds = bounds[:k] + [b + 1 for b in bounds[k:]]
                open_always = open_always or not last
                open_last = open_last or last
        k += 2
    if open_always:
        return input_ids, labels, bounds, "does not write it after an answer"
    if open_last:
        return input_ids, labels, bounds, "writes it only when more messages follow"
    return input_ids, labels, bounds, None


def warn_once(template: Any, tokenizer: Any, eot: int, behaviour: str) -> None:
    """Warn (once per template text and behaviour in this process) that answers were closed."""
    key = (str(getattr(template, "chat_template", None) or getattr(template, "name", "?")), behaviour)
    if key in _WARNED:
        return
    _WARNED.add(key)
    name = tokenizer.convert_ids_to_tokens(eot) if hasattr(tokenizer, "convert_ids_to_tokens") else eot
    warnings.warn(
        f"template {getattr(template, 'name', '?')!r}: the end-of-turn token {name!r} (id {eot}) "
        f"is missing after an answer (the template {behaviour}); gradwise labels it after each "
        "such answer (appending it where absent) so that the model learns to stop. Pass "
        "close_turns=False (data.close_turns: false) to keep the template's labels as they are.",
        UserWarning,
        stacklevel=3,
    )
