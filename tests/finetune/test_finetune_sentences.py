"""The shipped sentence set: reproducible origin, balance, splits."""

from importlib import resources

from gradwise import data as gdata
from gradwise.data._sentences import CLASSES, generate, write_csv


def test_shipped_csv_is_exactly_the_generator_output():
    shipped = resources.files("gradwise.data").joinpath("_files/sentences.csv").read_text("utf-8")
    assert shipped == write_csv(generate(0))


def test_balanced_unique_and_half_negated():
    s = gdata.sentences()
    assert len(s) == 480 and s.classes == CLASSES and s.task == "binary"
    assert int(s.y.sum()) == 240
    assert len(set(s.texts)) == 480
    turned = [t for t in s.texts if any(w in t for w in (" not ", "far from", "Nobody", "never",
                                                          "but", "anything but"))]
    assert 200 <= len(turned) <= 300
    # a negated positive adjective is a negative sentence, and the other way round
    labels = dict(zip(s.texts, s.y.tolist()))
    assert all(labels[t] == 0 for t in s.texts if " was not wonderful." in t)
    assert all(labels[t] == 1 for t in s.texts if " was far from awful." in t)


def test_split_keeps_classes_balanced():
    train, val, test = gdata.split(gdata.sentences(), val=0.15, test=0.25, seed=0)
    assert len(train) + len(val) + len(test) == 480
    assert abs(test.y.mean() - 0.5) < 0.02 and train.out_features == 1
    sub = train.subset([0, 1, 2])
    assert list(sub.texts) == list(train.texts[:3])
