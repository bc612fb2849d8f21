import pytest
import torch
from torch import nn

from gradwise.errors import DataError
from gradwise.lora import LoRAConfig, inject
from gradwise.nn import MLP, check_input_size, input_size
from gradwise.train import Trainer


def test_input_size_of_mlp_sequential_and_lora():
    assert input_size(MLP(64, [16], 3)) == ("block0.linear", 64)
    assert input_size(nn.Sequential(nn.Linear(7, 2), nn.ReLU())) == ("0", 7)
    assert input_size(nn.Linear(5, 1)) == ("Linear", 5)
    with pytest.warns(UserWarning):  # LoRA on a tiny head warns about its size
        lora = inject(MLP(6, [8], 2), LoRAConfig(r=2))
    assert input_size(lora) == ("block0.linear.base_layer", 6)
    # not a Linear first: unknown, no check
    assert input_size(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))) is None
    check_input_size(nn.Embedding(10, 4), torch.zeros(2, 99))


def test_check_names_both_sizes():
    with pytest.raises(DataError, match="train inputs have 30 features but the model's input "
                       "layer block0.linear takes 64"):
        check_input_size(MLP(64, [16], 3), torch.zeros(5, 30), "train inputs")
    check_input_size(MLP(64, [16], 3), torch.zeros(5, 64))


def test_trainer_checks_before_the_first_step():
    model = MLP(64, [16], 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                epochs=1, batch_size=8)
    X, y = torch.randn(16, 30), torch.randint(0, 3, (16,))
    with pytest.raises(DataError, match="30 features .* takes 64"):
        t.fit((X, y))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
