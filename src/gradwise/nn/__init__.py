"""Building blocks for networks: activations, the MLP builder and output heads.

>>> from gradwise import nn as gnn
>>> head = gnn.multiclass(3)
>>> net = gnn.MLP(4, [16], head.out_features)
>>> head.check_model(net)
"""

from gradwise.nn._activations import ACTIVATIONS, activation
from gradwise.nn._head import Head
from gradwise.nn._heads import HEADS, binary, head, multiclass, multilabel, regression
from gradwise.nn._inputs import check_input_size, input_size
from gradwise.nn._mlp import MLP

__all__ = [
    "ACTIVATIONS",
    "HEADS",
    "MLP",
    "Head",
    "activation",
    "binary",
    "check_input_size",
    "head",
    "input_size",
    "multiclass",
    "multilabel",
    "regression",
]
