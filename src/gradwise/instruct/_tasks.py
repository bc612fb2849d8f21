"""Generators of small text tasks: instruction data and a pretraining corpus.

Ten task types work on random strings of capital letters and on small
numbers, so any number of fresh examples can be drawn and held-out examples
are new to the model. Each task states the same fact in two ways:

* as *instructions* (``"Reverse the word: BAKO"`` -> ``"OKAB"``), the data of
  instruction tuning;
* as *plain sentences* (``"BAKO backwards is OKAB."``), the text a base model
  is pretrained on. The base model thus knows how to do the tasks but not how
  to answer an instruction and stop, which is what instruction tuning teaches.

The tokenizer of :func:`~gradwise.instruct.train_tokenizer` keeps capital
letters and digits one per token, so these strings are read character by
character while the English around them is merged by BPE.

>>> import random
>>> TASKS["reverse"].instruction(random.Random(0))
{'instruction': 'Write YNBI backwards.', 'output': 'IBNY'}
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from gradwise.errors import ConfigError, unknown
from gradwise.instruct._data import Example

LETTERS = string.ascii_uppercase


def _word(rng: random.Random, lo: int = 3, hi: int = 5) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(lo, hi)))


@dataclass(frozen=True)
class Task:
    """A task type: ``draw(rng) -> (inputs, answer)`` plus its phrasings.

    ``prompts`` are instruction phrasings and ``facts`` pretraining sentences;
    both are format strings over the inputs and (for facts) ``answer``.
    """

    name: str
    draw: Callable[[random.Random], tuple[dict, str]]
    prompts: tuple[str, ...]
    facts: tuple[str, ...]

    def instruction(self, rng: random.Random) -> dict[str, str]:
        """An alpaca record ``{"instruction", "output"}``."""
        args, answer = self.draw(rng)
        return {"instruction": rng.choice(self.prompts).format(**args), "output": answer}

    def fact(self, rng: random.Random) -> str:
        """A pretraining sentence stating the same kind of fact."""
        args, answer = self.draw(rng)
        return rng.choice(self.facts).format(answer=answer, **args)


def _w(fn: Callable[[str], str]) -> Callable[[random.Random], tuple[dict, str]]:
    def draw(rng: random.Random) -> tuple[dict, str]:
        w = _word(rng)
        return {"w": w}, fn(w)

    return draw


def _two_numbers(
    fn: Callable[[int, int], int], hi: int
) -> Callable[[random.Random], tuple[dict, str]]:
    def draw(rng: random.Random) -> tuple[dict, str]:
        a, b = rng.randint(0, hi), rng.randint(0, hi)
        return {"a": a, "b": b}, str(fn(a, b))

    return draw


def _two_words(rng: random.Random) -> tuple[dict, str]:
    a, b = _word(rng, 2, 3), _word(rng, 2, 3)
    return {"a": a, "b": b}, a + b


def _next(rng: random.Random) -> tuple[dict, str]:
    n = rng.randint(0, 498)
    return {"n": n}, str(n + 1)


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            "reverse",
            _w(lambda w: w[::-1]),
            ("Reverse the word: {w}", "Write {w} backwards."),
            ("{w} backwards is {answer}.", "Reversed, {w} reads {answer}."),
        ),
        Task(
            "spell",
            _w(lambda w: "-".join(w)),
            ("Spell {w} with dashes.", "Spell out: {w}"),
            ("{w} spelled out is {answer}.", "Letter by letter, {w} is {answer}."),
        ),
        Task(
            "add",
            _two_numbers(lambda a, b: a + b, 19),
            ("Add {a} and {b}.", "What is {a} plus {b}?"),
            ("{a} plus {b} is {answer}.", "The sum of {a} and {b} is {answer}."),
        ),
        Task(
            "sort",
            _w(lambda w: "".join(sorted(w))),
            ("Sort the letters of {w}.", "Put the letters of {w} in order."),
            ("{w} with sorted letters is {answer}.", "In order, the letters of {w} are {answer}."),
        ),
        Task(
            "count",
            _w(lambda w: str(len(w))),
            ("How many letters are in {w}?", "Count the letters: {w}"),
            ("{w} has {answer} letters.", "The word {w} is {answer} letters long."),
        ),
        Task(
            "first",
            _w(lambda w: w[0]),
            ("What is the first letter of {w}?", "First letter: {w}"),
            ("{w} starts with {answer}.", "The first letter of {w} is {answer}."),
        ),
        Task(
            "last",
            _w(lambda w: w[-1]),
            ("What is the last letter of {w}?", "Last letter: {w}"),
            ("{w} ends with {answer}.", "The last letter of {w} is {answer}."),
        ),
        Task(
            "larger",
            _two_numbers(max, 99),
            ("Which is larger, {a} or {b}?", "Give the larger number: {a}, {b}"),
            ("Of {a} and {b} the larger is {answer}.", "{answer} is the larger of {a} and {b}."),
        ),
        Task(
            "join",
            _two_words,
            ("Join {a} and {b} into one word.", "Concatenate: {a} {b}"),
            ("{a} joined with {b} gives {answer}.", "Put together, {a} and {b} make {answer}."),
        ),
        Task(
            "next",
            _next,
            ("What number comes after {n}?", "Next number after {n}:"),
            ("After {n} comes {answer}.", "The number after {n} is {answer}."),
        ),
    ]
}


def instruction_set(
    n_train: int, n_test: int, *, tasks: list[str] | None = None, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Train and held-out instruction examples, ``n_*`` per task, no prompt in both.

    >>> train, test = instruction_set(3, 2, tasks=["reverse"], seed=1)
    >>> len(train), len(test), test[0].messages[0]["content"], test[0].response
    (3, 2, 'Reverse the word: NTYY', 'YYTN')
    """
    names = tasks or list(TASKS)
    for name in names:
        if name not in TASKS:
            raise unknown("task", name, TASKS)
    rng = random.Random(seed)
    train: list[Example] = []
    test: list[Example] = []
    for name in names:
        seen: set[str] = set()
        rows: list[dict[str, str]] = []
        attempts = 0
        while len(rows) < n_train + n_test:
            attempts += 1
            if attempts > 100 * (n_train + n_test):
                raise ConfigError(
                    f"task {name!r} has fewer than {n_train + n_test} distinct prompts; "
                    "ask for fewer examples"
                )
            rec = TASKS[name].instruction(rng)
            if rec["instruction"] not in seen:  # a held-out prompt is never a training prompt
                seen.add(rec["instruction"])
                rows.append(rec)
        train += [Example.from_alpaca(r["instruction"], r["output"]) for r in rows[:n_train]]
        test += [Example.from_alpaca(r["instruction"], r["output"]) for r in rows[n_train:]]
    random.Random(seed + 1).shuffle(train)
    return train, test


def task_of(example: Example) -> str:
    """The task name an example's instruction was drawn from (``"?"`` if none matches)."""
    text = example.messages[0].get("instruction", example.messages[0]["content"])
    for name, task in TASKS.items():
        for p in task.prompts:
            pattern = re.sub(r"\\\{\w+\\\}", r"[A-Z0-9]+", re.escape(p))
            if re.fullmatch(pattern, text):
                return name
    return "?"


def corpus(n_documents: int, *, sentences: tuple[int, int] = (3, 6), seed: int = 0) -> list[str]:
    """Pretraining documents: each a few fact sentences of random tasks.

    >>> len(corpus(5, seed=0))
    5
    """
    rng = random.Random(seed)
    tasks = list(TASKS.values())
    return [
        " ".join(rng.choice(tasks).fact(rng) for _ in range(rng.randint(*sentences)))
        for _ in range(n_documents)
    ]
