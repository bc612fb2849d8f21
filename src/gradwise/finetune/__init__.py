"""Fine-tuning: freezing, layer groups, gradual unfreezing plans, discriminative
learning rates, augmentation, and the pieces a transfer run needs.

>>> import torch
>>> from gradwise.nn import MLP
>>> from gradwise.finetune import layer_groups, discriminative_lr, freeze
>>> net = MLP(8, [16, 16], 3)
>>> [g.name for g in layer_groups(net)]
['block0', 'block1', 'head']
>>> opt = torch.optim.AdamW(discriminative_lr(net, lr=1e-3, factor=2.6))
>>> frozen = freeze(net, "block0")

See ``docs/finetune.md`` for plans, augmentations and the ``gradwise finetune`` command.
"""

from gradwise.finetune._augment import (
    AUGMENTATIONS,
    Augmentation,
    Cutout,
    GaussianNoise,
    Mixup,
    RandomAffine,
    RandomCrop,
    RandomFlip,
    augmentation,
)
from gradwise.finetune._augmenter import Augment
from gradwise.finetune._convnet import ConvNet
from gradwise.finetune._discriminative import discriminative_lr, group_lrs
from gradwise.finetune._freeze import BATCHNORM_MODES, count_trainable, freeze, is_bn_eval, unfreeze
from gradwise.finetune._groups import LayerGroup, layer_groups
from gradwise.finetune._head import find_head, replace_head, swapped
from gradwise.finetune._plan import Gradual, Plan, Stage
from gradwise.finetune._source import Source, build_model, load_source
from gradwise.finetune._text import POOLINGS, TextClassifier, load_hf_encoder, tokenize
from gradwise.finetune._unfreeze import GradualUnfreezing, restart_schedule

__all__ = [
    "AUGMENTATIONS",
    "BATCHNORM_MODES",
    "POOLINGS",
    "Augment",
    "Augmentation",
    "ConvNet",
    "Cutout",
    "GaussianNoise",
    "Gradual",
    "GradualUnfreezing",
    "LayerGroup",
    "Mixup",
    "Plan",
    "RandomAffine",
    "RandomCrop",
    "RandomFlip",
    "Source",
    "Stage",
    "TextClassifier",
    "augmentation",
    "build_model",
    "count_trainable",
    "discriminative_lr",
    "find_head",
    "freeze",
    "group_lrs",
    "is_bn_eval",
    "layer_groups",
    "load_hf_encoder",
    "load_source",
    "replace_head",
    "restart_schedule",
    "swapped",
    "tokenize",
    "unfreeze",
]
