"""A small sentence-classification set shipped with gradwise: review sentiment with negation.

Origin and license: every sentence was generated for gradwise from the
templates and word lists in this module by :func:`generate` (seed 0) and is
dedicated to the public domain (CC0 1.0). No sentence comes from an existing
corpus. ``data/_files/sentences.csv`` is exactly ``generate(0)``; a test
checks it.

The task: is a short review sentence positive or negative? Half of the
sentences carry their sentiment in a plain adjective ("The pasta was
wonderful."); the other half turn it around with negation or contrast ("The
pasta was far from wonderful.", "I expected the pasta to be awful, but it was
wonderful."), which a bag of word embeddings gets wrong and a fine-tuned
encoder learns.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from gradwise.errors import DataError

CLASSES = ["negative", "positive"]

_SUBJECTS = [
    "the pasta", "the service", "this phone", "the hotel room", "the movie", "the concert",
    "the new update", "the battery", "the staff", "the plot", "the coffee", "the delivery",
    "the keyboard", "the soundtrack", "the checkout", "the sofa", "the museum tour",
    "the camera", "the soup", "the train ride",
]  # fmt: skip
_POS = [
    "great", "wonderful", "excellent", "delightful", "superb", "fantastic", "pleasant",
    "impressive", "reliable", "charming", "lovely", "brilliant",
]  # fmt: skip
_NEG = [
    "awful", "terrible", "disappointing", "dreadful", "mediocre", "annoying", "unpleasant",
    "sloppy", "boring", "unreliable", "horrible", "dull",
]  # fmt: skip

# (template, sentiment of the sentence when {a} is a positive adjective);
# with a negative adjective the sentiment flips. {b} is an adjective of the
# opposite polarity to {a}.
_TEMPLATES = [
    ("{S} was {a}.", 1),
    ("Honestly, {s} was {a}.", 1),
    ("I found {s} {a}.", 1),
    ("{S} was truly {a}, as everyone said.", 1),
    ("{S} was not {a}.", 0),
    ("{S} was far from {a}.", 0),
    ("Nobody could call {s} {a}.", 0),
    ("I would never describe {s} as {a}.", 0),
    ("I expected {s} to be {b}, but it was {a}.", 1),
    ("{S} seemed {a} at first, but it turned out {b}.", 0),
    ("{S} was anything but {a}.", 0),
    ("Despite the reviews, {s} was {a}.", 1),
]


def generate(seed: int = 0, per_template: int = 40) -> list[tuple[str, str]]:
    """The ``(text, label)`` rows of the set: ``per_template`` per template, balanced labels."""
    rng = np.random.RandomState(seed)
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for template, pos_sentiment in _TEMPLATES:
        for i in range(per_template):
            positive_a = i % 2 == 0  # half with each polarity of {a}: labels stay balanced
            for _ in range(100):  # redraw duplicates
                s = _SUBJECTS[rng.randint(len(_SUBJECTS))]
                a = (_POS if positive_a else _NEG)[rng.randint(len(_POS))]
                b = (_NEG if positive_a else _POS)[rng.randint(len(_NEG))]
                text = template.format(S=s[0].upper() + s[1:], s=s, a=a, b=b)
                if text not in seen:
                    break
            seen.add(text)
            label = pos_sentiment if positive_a else 1 - pos_sentiment
            rows.append((text, CLASSES[label]))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


@dataclass(eq=False)
class Sentences:
    """Texts and integer labels; splits with :func:`gradwise.data.split` like a Table.

    Attributes:
        texts: ``(n,)`` object array of strings.
        y: ``int64 (n,)`` class indices.
        classes: the label name of each class index.
        task: ``"binary"`` for two classes, else ``"multiclass"``.
        name: dataset name.
    """

    texts: np.ndarray
    y: np.ndarray
    classes: list[str]
    task: str = "binary"
    name: str = "sentences"

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def out_features(self) -> int:
        """1 for a binary task (one logit), else the number of classes."""
        return 1 if self.task == "binary" else self.n_classes

    def subset(self, idx: Any) -> Sentences:
        """The rows ``idx`` (integer indices or a boolean mask)."""
        idx = np.asarray(idx)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        return dataclasses.replace(self, texts=self.texts[idx], y=self.y[idx])

    def __repr__(self) -> str:
        return f"Sentences(name={self.name!r}, n={len(self)}, classes={self.classes})"


def sentences() -> Sentences:
    """The shipped review-sentiment set: 480 sentences, ``negative``/``positive``, balanced.

    CC0, generated for gradwise from templates (see this module); half the
    sentences negate or contrast their adjective.

    >>> s = sentences()
    >>> len(s), s.classes, int(s.y.sum())
    (480, ['negative', 'positive'], 240)
    """
    text = resources.files("gradwise.data").joinpath("_files/sentences.csv").read_text("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if header != ["text", "label"]:
        raise DataError(f"sentences.csv: expected header text,label, got {header}")
    texts, labels = [], []
    for row in reader:
        texts.append(row[0])
        labels.append(CLASSES.index(row[1]))
    return Sentences(np.array(texts, dtype=object), np.array(labels, dtype=np.int64), list(CLASSES))


def write_csv(rows: list[tuple[str, str]]) -> str:
    """The CSV text of ``rows`` as shipped (header ``text,label``, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return buf.getvalue()
