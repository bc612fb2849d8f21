"""Generators of small text tasks: instruction data and a pretraining corpus.

Ten task types over a small closed world: a fixed list of made-up words
(``BAKO``, ``TUF``...) and small numbers. Each task states its facts in two
ways:

* as *plain sentences* (``"BAKO backwards is OKAB."``), the text a base model
  is pretrained on, every fact many times and in several phrasings;
* as *instructions* (``"Reverse the word: BAKO"`` -> ``"OKAB"``), the data of
  instruction tuning.

The base model thus *knows* every fact but has never been asked for one;
instruction tuning on some facts teaches it the format (answer the request,
then stop), and held-out instructions ask for facts whose instruction was
never trained. This is the lesson of instruction tuning at scale: knowledge
comes from pretraining, the tuning teaches how to use it (Zhou et al. 2023,
"LIMA: Less Is More for Alignment").

>>> TASKS["reverse"].answer({"w": "BAKO"})
'OKAB'
>>> TASKS["reverse"].prompts[0].format(w="BAKO")
'Reverse the word: BAKO'
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from gradwise.errors import ConfigError, unknown
from gradwise.instruct._data import Example

N_WORDS = 100


@lru_cache(maxsize=8)
def words(n: int = N_WORDS, seed: int = 0) -> tuple[str, ...]:
    """``n`` distinct made-up words of 3-4 capital letters (the same for a seed).

    >>> words(3)
    ('YNBI', 'MZJP', 'SGQE')
    """
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        out["".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 4)))] = None
    return tuple(out)


@dataclass(frozen=True)
class Task:
    """A task type: its items (the closed world), answer function and phrasings.

    ``items()`` lists every input of the task as a dict of format fields;
    ``prompts`` are instruction phrasings and ``facts`` pretraining sentences,
    format strings over an item's fields and (for facts) ``answer``.
    """

    name: str
    items: Callable[[], list[dict]]
    answer: Callable[[dict], str]
    prompts: tuple[str, ...]
    facts: tuple[str, ...]

    def instruction(self, item: dict, phrasing: int = 0) -> dict[str, str]:
        """An alpaca record ``{"instruction", "output"}`` for one item."""
        return {"instruction": self.prompts[phrasing].format(**item), "output": self.answer(item)}

    def fact(self, item: dict, phrasing: int = 0) -> str:
        """A pretraining sentence stating the item's fact."""
        return self.facts[phrasing].format(answer=self.answer(item), **item)


def _word_items() -> list[dict]:
    return [{"w": w, "lower": w.lower()} for w in words()]


def _pairs(hi: int, distinct: bool = False) -> Callable[[], list[dict]]:
    def items() -> list[dict]:
        return [
            {"a": a, "b": b}
            for a in range(hi + 1)
            for b in range(hi + 1)
            if not (distinct and a == b)
        ]

    return items


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            "reverse",
            _word_items,
            lambda x: x["w"][::-1],
            ("Reverse the word: {w}", "Write {w} backwards."),
            (
                "{w} backwards is {answer}.",
                "Reversed, {w} reads {answer}.",
                "The reverse of {w} is {answer}.",
            ),
        ),
        Task(
            "uppercase",
            _word_items,
            lambda x: x["w"],
            ("Write {lower} in capital letters.", "Uppercase: {lower}"),
            (
                "{lower} in capitals is {answer}.",
                "In upper case, {lower} is {answer}.",
                "The capital form of {lower} is {answer}.",
            ),
        ),
        Task(
            "spell",
            _word_items,
            lambda x: "-".join(x["w"]),
            ("Spell {w} with dashes.", "Spell out: {w}"),
            (
                "{w} spelled out is {answer}.",
                "Letter by letter, {w} is {answer}.",
                "The spelling of {w} is {answer}.",
            ),
        ),
        Task(
            "sort",
            _word_items,
            lambda x: "".join(sorted(x["w"])),
            ("Sort the letters of {w}.", "Put the letters of {w} in order."),
            (
                "{w} with sorted letters is {answer}.",
                "In order, the letters of {w} are {answer}.",
                "Sorted, {w} becomes {answer}.",
            ),
        ),
        Task(
            "count",
            _word_items,
            lambda x: str(len(x["w"])),
            ("How many letters are in {w}?", "Count the letters: {w}"),
            (
                "{w} has {answer} letters.",
                "The word {w} is {answer} letters long.",
                "The length of {w} is {answer}.",
            ),
        ),
        Task(
            "first",
            _word_items,
            lambda x: x["w"][0],
            ("What is the first letter of {w}?", "First letter: {w}"),
            (
                "{w} starts with {answer}.",
                "The first letter of {w} is {answer}.",
                "{w} begins with {answer}.",
            ),
        ),
        Task(
            "last",
            _word_items,
            lambda x: x["w"][-1],
            ("What is the last letter of {w}?", "Last letter: {w}"),
            (
                "{w} ends with {answer}.",
                "The last letter of {w} is {answer}.",
                "{w} finishes with {answer}.",
            ),
        ),
        Task(
            "add",
            _pairs(10),
            lambda x: str(x["a"] + x["b"]),
            ("Add {a} and {b}.", "What is {a} plus {b}?"),
            (
                "{a} plus {b} is {answer}.",
                "The sum of {a} and {b} is {answer}.",
                "Adding {a} and {b} gives {answer}.",
            ),
        ),
        Task(
            "larger",
            _pairs(20, distinct=True),
            lambda x: str(max(x["a"], x["b"])),
            ("Which is larger, {a} or {b}?", "Give the larger number: {a}, {b}"),
            (
                "Of {a} and {b} the larger is {answer}.",
                "{answer} is larger than the other of {a} and {b}.",
                "Between {a} and {b}, {answer} is larger.",
            ),
        ),
        Task(
            "next",
            lambda: [{"n": n} for n in range(100)],
            lambda x: str(x["n"] + 1),
            ("What number comes after {n}?", "Next number after {n}:"),
            (
                "After {n} comes {answer}.",
                "The number after {n} is {answer}.",
                "{n} is followed by {answer}.",
            ),
        ),
    ]
}


def _random_word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 4)))


def _check(tasks: list[str] | None) -> list[str]:
    names = tasks or list(TASKS)
    for name in names:
        if name not in TASKS:
            raise unknown("task", name, TASKS)
    return names


def instruction_set(
    n_train: int | None, n_test: int, *, tasks: list[str] | None = None, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Train and held-out instructions: per task, ``n_test`` items are held out.

    A held-out item's instruction is never trained (in any phrasing); its
    fact is in the pretraining corpus like every other. Training uses at
    most ``n_train`` of the remaining items (all when ``None``), each in
    every instruction phrasing; each held-out item is asked in one random
    phrasing. :func:`instruction_splits` also draws a validation split.

    >>> train, test = instruction_set(3, 2, tasks=["reverse"], seed=1)
    >>> len(train), len(test)
    (6, 2)
    >>> test[0].response == test[0].messages[0]["content"].split()[-1][::-1]
    True
    """
    train, _, test = instruction_splits(n_train, 0, n_test, tasks=tasks, seed=seed)
    return train, test


def instruction_splits(
    n_train: int | None,
    n_val: int,
    n_test: int,
    *,
    tasks: list[str] | None = None,
    seed: int = 0,
) -> tuple[list[Example], list[Example], list[Example]]:
    """Train, validation and held-out test instructions, disjoint per task.

    Per task, ``n_test`` items are held out for the final measurement and
    the next ``n_val`` items validate the run (the loss that a divergence
    guard or early stopping watches); training uses at most ``n_train`` of
    the rest (all when ``None``), each in every phrasing. A validation or
    test item is asked in one random phrasing and its instruction is never
    trained, so a number measured on the test split was seen neither in
    training nor in choosing the epoch. The test items and phrasings do not
    depend on ``n_val``; with ``n_val=0`` the draw equals :func:`instruction_set`'s.

    >>> train, val, test = instruction_splits(3, 2, 2, tasks=["reverse"], seed=1)
    >>> len(train), len(val), len(test)
    (6, 2, 2)
    >>> {e.messages[0]["content"] for e in val} & {e.messages[0]["content"] for e in test}
    set()
    """
    if n_val < 0 or n_test < 0:
        raise ConfigError(f"n_val and n_test must be >= 0, got n_val={n_val}, n_test={n_test}")
    rng = random.Random(seed)
    val_rng = random.Random(f"{seed}:val")  # its own stream: the other splits ignore n_val
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for name in _check(tasks):
        task = TASKS[name]
        items = task.items()
        if n_test + n_val >= len(items):
            raise ConfigError(
                f"task {name!r} has {len(items)} items; cannot hold out {n_test} "
                f"(test) + {n_val} (val) of them and train on the rest"
            )
        rng.shuffle(items)
        held, checked = items[:n_test], items[n_test : n_test + n_val]
        rest = items[n_test + n_val :]
        rest = rest if n_train is None else rest[:n_train]
        for item in rest:
            for p in range(len(task.prompts)):
                rec = task.instruction(item, p)
                train.append(Example.from_alpaca(rec["instruction"], rec["output"]))
        for item in held:
            rec = task.instruction(item, rng.randrange(len(task.prompts)))
            test.append(Example.from_alpaca(rec["instruction"], rec["output"]))
        for item in checked:
            rec = task.instruction(item, val_rng.randrange(len(task.prompts)))
            val.append(Example.from_alpaca(rec["instruction"], rec["output"]))
    rng.shuffle(train)
    return train, val, test


def task_of(example: Example) -> str:
    """The task name an example's instruction was drawn from (``"?"`` if none matches)."""
    text = example.messages[0].get("instruction", example.messages[0]["content"])
    for name, task in TASKS.items():
        for p in task.prompts:
            pattern = re.sub(r"\\\{\w+\\\}", r"[A-Za-z0-9]+", re.escape(p))
            if re.fullmatch(pattern, text):
                return name
    return "?"


def corpus(
    n_documents: int,
    *,
    sentences: tuple[int, int] = (3, 6),
    tasks: list[str] | None = None,
    seed: int = 0,
    fresh_words: float = 0.0,
) -> list[str]:
    """Pretraining documents: each a few fact sentences drawn at random.

    A sentence picks a task uniformly, then one of its items and one of its
    phrasings, so every task fills the same share of the corpus and each
    fact of a task with ``n`` items is stated about
    ``n_documents * 4.5 / (10 * n)`` times (``sentences=(3, 6)``).

    ``fresh_words``: the share of word-task sentences that state the fact of
    a new random word (3-4 capitals) instead of one of the closed world's.
    A fact about a word seen once cannot be memorized, only read off the word,
    so these sentences teach the skill (find the first letter, count the
    letters) rather than the fact.

    >>> docs = corpus(2, seed=0)
    >>> len(docs), docs[0].endswith(".")
    (2, True)
    """
    if not 0.0 <= fresh_words <= 1.0:
        raise ConfigError(f"fresh_words must be in [0, 1], got {fresh_words}")
    rng = random.Random(seed)
    chosen = [TASKS[name] for name in _check(tasks)]
    items = {t.name: t.items() for t in chosen}

    def sentence() -> str:
        task = rng.choice(chosen)
        item = rng.choice(items[task.name])
        if fresh_words and "w" in item and rng.random() < fresh_words:
            w = _random_word(rng)
            item = {"w": w, "lower": w.lower()}
        return task.fact(item, rng.randrange(len(task.facts)))

    return [
        " ".join(sentence() for _ in range(rng.randint(*sentences))) for _ in range(n_documents)
    ]
