"""Check, before training, that a model's first layer takes as many features as the data has."""

from __future__ import annotations

from torch import Tensor, nn

from gradwise.errors import DataError


def input_size(model: nn.Module) -> tuple[str, int] | None:
    """The name and ``in_features`` of ``model``'s input layer, when it is a ``Linear``.

    The input layer is the first module, in registration order, that holds
    parameters of its own. When it is not an ``nn.Linear`` (an embedding, a
    convolution, a LoRA factor...) the input size is not known here: None.

    Example:
        >>> from gradwise.nn import MLP
        >>> input_size(MLP(4, [8], 2))
        ('block0.linear', 4)
    """
    for name, module in model.named_modules():
        if next(module.parameters(recurse=False), None) is None:
            continue  # a container: look inside
        if isinstance(module, nn.Linear):
            return name or type(model).__name__, module.in_features
        return None
    return None


def check_input_size(model: nn.Module, inputs: Tensor, what: str = "inputs") -> None:
    """Raise a :class:`~gradwise.errors.DataError` naming both sizes when the
    feature count of ``inputs`` (shape ``(N, features)``) is not what ``model``'s
    input ``Linear`` takes; a no-op when either size is not known.

    Args:
        model: the network.
        inputs: a 2-D batch or the whole input tensor.
        what: how to name the data in the message (``"train inputs"``).

    Example:
        >>> import torch
        >>> from gradwise.nn import MLP
        >>> check_input_size(MLP(4, [8], 2), torch.zeros(3, 4))  # 4 features: fine
        >>> # torch.zeros(3, 5) raises: "train inputs have 5 features but the model's
        >>> # input layer block0.linear takes 4; ..."
    """
    found = input_size(model)
    if found is None or not isinstance(inputs, Tensor) or inputs.dim() != 2:
        return
    name, size = found
    features = inputs.shape[1]
    if features != size:
        raise DataError(
            f"{what} have {features} features but the model's input layer {name} takes "
            f"{size}; the model was built for other data (use data with {size} features, "
            "or a model built for this data)"
        )
