import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gradwise.errors import ConfigError, HeadError
from gradwise.nn import (
    HEADS,
    MLP,
    Head,
    binary,
    head,
    multiclass,
    multilabel,
    regression,
)

# -- losses against hand-computed values and torch.nn.functional --------------


def test_binary_loss():
    h = binary()
    assert h(torch.zeros(3, 1), torch.tensor([0, 1, 1])).item() == pytest.approx(math.log(2))
    torch.manual_seed(0)
    z, y = torch.randn(8, 1), torch.randint(0, 2, (8,))
    torch.testing.assert_close(h(z, y), F.binary_cross_entropy_with_logits(z, y[:, None].float()))
    # a model that squeezed its logit to (N,) works too
    torch.testing.assert_close(h(z[:, 0], y), h(z, y))
    # stable for huge logits: −log σ(−100) = 100 + log(1 + e^-100)
    assert h(torch.tensor([[100.0]]), torch.tensor([0])).item() == pytest.approx(100.0)
    assert h(torch.tensor([[-100.0]]), torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-30)


def test_binary_gradient_is_sigmoid_minus_target():
    z = torch.tensor([[0.5], [-1.0]], requires_grad=True)
    binary()(z, torch.tensor([1, 0])).backward()
    expected = (torch.sigmoid(z.detach()) - torch.tensor([[1.0], [0.0]])) / 2
    torch.testing.assert_close(z.grad, expected)


def test_binary_pos_weight():
    z, y = torch.tensor([[0.3], [-0.7]]), torch.tensor([1.0, 0.0])
    ref = F.binary_cross_entropy_with_logits(z, y[:, None], pos_weight=torch.tensor([3.0]))
    torch.testing.assert_close(binary(pos_weight=3.0)(z, y), ref)


def test_multiclass_loss():
    h = multiclass(4)
    assert h(torch.zeros(2, 4), torch.tensor([0, 3])).item() == pytest.approx(math.log(4))
    torch.manual_seed(0)
    z, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    torch.testing.assert_close(h(z, y), F.cross_entropy(z, y))
    torch.testing.assert_close(h(z, y.double()[:, None]), F.cross_entropy(z, y))  # (N,1), 1.0
    # log-sum-exp stays finite: −z_y + log(e^1000 + e^0) = 1000 for y = 1
    assert h(torch.tensor([[1000.0, 0, 0, 0]]), torch.tensor([1])).item() == pytest.approx(1000)


def test_multiclass_options():
    z, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, 1])
    w = [1.0, 2.0, 0.5]
    ref = F.cross_entropy(z, y, weight=torch.tensor(w), label_smoothing=0.1)
    torch.testing.assert_close(multiclass(3, weight=w, label_smoothing=0.1)(z, y), ref)
    with pytest.raises(ConfigError, match="weight must have 3 entries"):
        multiclass(3, weight=[1.0, 2.0])
    with pytest.raises(ConfigError, match="label_smoothing"):
        multiclass(3, label_smoothing=1.0)


def test_multilabel_loss():
    torch.manual_seed(0)
    z, y = torch.randn(5, 3), torch.randint(0, 2, (5, 3))
    torch.testing.assert_close(
        multilabel(3)(z, y), F.binary_cross_entropy_with_logits(z, y.float())
    )
    pw = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(
        multilabel(3, pos_weight=pw)(z, y),
        F.binary_cross_entropy_with_logits(z, y.float(), pos_weight=pw),
    )


def test_regression_loss():
    h = regression()
    # ((1−0)² + (3−1)²) / 2
    assert h(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])).item() == 2.5
    assert h(torch.tensor([1.0, 3.0]), torch.tensor([0, 1])).item() == 2.5
    z, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2)
    out = regression(2)(z, y)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, F.mse_loss(z, y.double()))


def test_shape_mismatch_is_a_head_error():
    with pytest.raises(HeadError, match=r"target shape \(3, 1\) does not match.*\(3, 2\)"):
        binary()(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
    with pytest.raises(HeadError, match=r"expected output \(N, 3\) and target \(N,\)"):
        multiclass(3)(torch.zeros(3, 3), torch.tensor([0, 1]))


# -- probabilities, predictions, metadata ---------------------------------------


def test_probs_and_predict():
    z = torch.tensor([[2.0], [-1.0], [0.0]])
    torch.testing.assert_close(binary().probs(z), torch.sigmoid(z[:, 0]))
    assert binary().predict(z).tolist() == [1, 0, 0]

    z = torch.tensor([[0.0, math.log(3.0)], [2.0, 1.0]])
    h = multiclass(2)
    torch.testing.assert_close(h.probs(z)[0], torch.tensor([0.25, 0.75]))
    assert h.predict(z).tolist() == [1, 0]

    z = torch.tensor([[1.5, -0.3, 0.2]])
    torch.testing.assert_close(multilabel(3).probs(z), torch.sigmoid(z))
    assert multilabel(3).predict(z).tolist() == [[1, 0, 1]]

    z = torch.tensor([[1.5], [-2.0]])
    assert regression().predict(z).tolist() == [1.5, -2.0]
    torch.testing.assert_close(regression().probs(z), regression().predict(z))
    assert regression(2).predict(torch.ones(3, 2)).shape == (3, 2)


def test_prepare_target():
    t = binary().prepare_target(torch.tensor([0, 1]))
    assert t.dtype == torch.float32 and t.shape == (2, 1)
    t = multiclass(3).prepare_target(np.array([[2.0], [0.0]]))
    assert t.dtype == torch.int64 and t.tolist() == [2, 0]
    t = multilabel(2).prepare_target(torch.tensor([[1, 0]]))
    assert t.dtype == torch.float32
    t = regression().prepare_target(torch.tensor([1, 2]))
    assert t.dtype == torch.float32 and t.shape == (2, 1)


def test_metadata_and_registry():
    assert HEADS == ("binary", "multiclass", "multilabel", "regression")
    for h, name, k, loss, metrics in [
        (binary(), "binary", 1, nn.BCEWithLogitsLoss, ("accuracy",)),
        (multiclass(5), "multiclass", 5, nn.CrossEntropyLoss, ("accuracy",)),
        (multilabel(4), "multilabel", 4, nn.BCEWithLogitsLoss, ("accuracy",)),
        (regression(2), "regression", 2, nn.MSELoss, ("mse", "mae", "r2")),
    ]:
        assert isinstance(h, Head) and isinstance(h, nn.Module)
        assert (h.name, h.out_features, h.default_metrics) == (name, k, metrics)
        assert type(h.loss) is loss
        made = head(name, None if name == "binary" else k)
        assert (made.name, made.out_features) == (name, k)
    assert head("regression").out_features == 1


def test_head_moves_loss_buffers():
    h = multiclass(2, weight=[1.0, 3.0]).to(torch.float64)
    assert h.loss.weight.dtype == torch.float64


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: head("multiclas", 3), r"unknown head 'multiclas' \(did you mean 'multiclass'"),
        (lambda: head("multiclass"), r"'multiclass' needs n, the number of classes"),
        (lambda: head("multilabel"), r"number of labels"),
        (lambda: head("binary", 3), r"single logit \(two classes\), but 3 .*head: multiclass"),
        (lambda: multiclass(1), r"num_classes must be an int >= 2, got 1"),
        (lambda: multilabel(0), r"num_labels must be an int >= 1, got 0"),
        (lambda: regression(2.0), r"num_outputs must be an int >= 1, got 2.0"),
        (lambda: binary(pos_weight=0), r"pos_weight must be a number > 0, got 0"),
    ],
)
def test_constructor_errors(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# -- check_model ---------------------------------------------------------------


def test_check_model_rejects_final_squash():
    with pytest.raises(HeadError) as err:
        binary().check_model(nn.Sequential(nn.Linear(3, 1), nn.Sigmoid()))
    msg = str(err.value)
    assert "Sigmoid at '1'" in msg and "binary head" in msg and "remove the final Sigmoid" in msg
    assert "BCEWithLogitsLoss" in msg

    nested = nn.Sequential(
        nn.Sequential(nn.Linear(3, 4), nn.ReLU()),
        nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1), nn.Dropout(0.1)),
    )
    with pytest.raises(HeadError, match=r"Softmax at '1.1'.*multiclass head.*softmax itself"):
        multiclass(3).check_model(nested)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = MLP(3, [4], 2)
            self.out = nn.LogSoftmax(dim=1)

    with pytest.raises(HeadError, match=r"LogSoftmax at 'out'.*multilabel head"):
        multilabel(2).check_model(Net())


def test_check_model_accepts_logit_models_and_bounded_regression():
    multiclass(3).check_model(MLP(4, [8], 3))
    binary().check_model(nn.Linear(4, 1))
    regression().check_model(nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()))  # bounded target
    binary().check_model(nn.Sequential(nn.Sigmoid(), nn.Linear(4, 1)))  # sigmoid not at the end


def test_check_model_out_features():
    with pytest.raises(
        HeadError, match=r"'head' has out_features=2.*expects out_features=1.*multiclass\(2\)"
    ):
        binary().check_model(MLP(4, [8], 2))
    with pytest.raises(HeadError, match=r"'<model>' has out_features=4.*out_features=3"):
        multiclass(3).check_model(nn.Linear(5, 4))
    with pytest.raises(HeadError, match=r"out_features=1.*regression head expects out_features=2"):
        regression(2).check_model(MLP(4, [], 1))


# -- check_targets ---------------------------------------------------------------


def test_valid_targets_pass():
    binary().check_targets(torch.tensor([0, 1, 1]))
    binary().check_targets(np.array([[0.0], [1.0]]))  # integral floats are fine
    binary().check_targets(torch.tensor([True, False]))
    multiclass(3).check_targets(torch.tensor([0.0, 2.0, 1.0]))
    multilabel(2).check_targets(np.array([[0, 1], [1, 1]]))
    regression().check_targets(torch.tensor([0.5, -3.0]))
    regression(2).check_targets(np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("h", "y", "match"),
    [
        (
            binary(),
            [0, 1, 2],
            r"target 2 at row 2 is not a binary label; allowed values are 0 and 1",
        ),
        (binary(), [0, -1], r"target -1 at row 1"),
        (binary(), [0.0, 0.5], r"float targets for a classifier.*0.5 at row 1"),
        (binary(), [[0, 1], [1, 0]], r"shape \(N,\) or \(N, 1\), got \(2, 2\)"),
        (multiclass(3), [0, 3, 1], r"class index 3 at row 1 is out of range; with 3 classes.*0..2"),
        (multiclass(3), [0, 1, -1], r"class index -1 at row 2"),
        (
            multiclass(3),
            [1.0, 2.5],
            r"float targets for a classifier: the multiclass head got 2.5 at row 1",
        ),
        (multiclass(3), [[1, 0, 0]], r"looks one-hot.*argmax"),
        (multiclass(3), [0.0, float("nan")], r"nan at row 1; targets must be finite"),
        (multilabel(2), [0, 1], r"0/1 matrix of shape \(N, 2\), got shape \(2,\)"),
        (multilabel(2), [[0, 1], [2, 0]], r"target 2 at row 1, column 0 is not 0 or 1"),
        (multilabel(2), [[0, 0.3]], r"float targets for a classifier.*0.3 at row 0, column 1"),
        (regression(), [1.0, float("nan")], r"regression head: target has nan at row 1"),
        (regression(2), [[1.0, 0.0], [0.0, float("inf")]], r"inf at row 1, column 1"),
        (regression(2), [1.0, 2.0], r"shape \(N, 2\), got \(2,\)"),
    ],
)
def test_bad_targets(h, y, match):
    with pytest.raises(HeadError, match=match):
        h.check_targets(torch.tensor(y))


def test_regression_head_on_class_labels_says_so_in_words():
    from gradwise.errors import HeadError as _HeadError

    with pytest.raises(_HeadError, match=r"class labels \(3 distinct integers.*head: multiclass"):
        head("regression", 3).check_targets(torch.tensor([0, 1, 2, 1]))
