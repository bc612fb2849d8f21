"""layer_groups: input-to-output order on Sequential, MLP, CNNs and tiny random Hugging Face models."""

import pytest
import torch
from torch import nn

from gradwise.errors import ConfigError
from gradwise.finetune import ConvNet, TextClassifier, layer_groups
from gradwise.nn import MLP

transformers = pytest.importorskip("transformers")


def _covers_each_parameter_once(model, groups):
    seen = [id(p) for g in groups for _, p in g.params]
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(p) for p in model.parameters()}


def test_sequential_skips_parameterless_layers():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    groups = layer_groups(net)
    assert [g.name for g in groups] == ["0", "2", "4"]
    assert groups[1].names == ["2.weight", "2.bias"]
    assert groups[-1].numel == 8 * 2 + 2
    _covers_each_parameter_once(net, groups)


def test_mlp_blocks_then_head():
    net = MLP(4, [8, 8, 8], 2, batchnorm=True, dropout=0.1)
    groups = layer_groups(net)
    assert [g.name for g in groups] == ["block0", "block1", "block2", "head"]
    assert groups[0].names == [
        "block0.linear.weight", "block0.norm.weight", "block0.norm.bias",
    ]  # fmt: skip
    _covers_each_parameter_once(net, groups)


def test_flat_cnn_puts_batchnorm_with_its_conv():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip
    groups = layer_groups(net)
    assert [g.name for g in groups] == ["0", "4", "8"]
    assert groups[0].names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    _covers_each_parameter_once(net, groups)


def test_custom_cnn_module_and_convnet():
    class Net(nn.Module):  # torchvision style: attributes, not a container
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
            self.layer1 = nn.Sequential(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3))
            self.fc = nn.Linear(4, 3)

    net = Net()
    assert [g.name for g in layer_groups(net)] == ["conv1", "layer1.0", "layer1.1", "fc"]
    conv = ConvNet((1, 8, 8), channels=(4, 8), hidden=16, out_features=5)
    assert [g.name for g in layer_groups(conv)] == ["conv0", "conv1", "fc", "head"]
    _covers_each_parameter_once(conv, layer_groups(conv))


def _tiny_bert_config():
    return transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32,
    )  # fmt: skip


def test_tiny_bert_embeddings_layers_head():
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(_tiny_bert_config())
    groups = layer_groups(model)
    assert [g.name for g in groups] == [
        "bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1",
        "bert.encoder.layer.2", "bert.pooler", "classifier",
    ]  # fmt: skip
    assert all(n.startswith("bert.encoder.layer.1.") for n in groups[2].names)
    _covers_each_parameter_once(model, groups)
    clf = TextClassifier(transformers.BertModel(_tiny_bert_config()), out_features=3)
    names = [g.name for g in layer_groups(clf)]
    assert names[0] == "encoder.embeddings" and names[-1] == "head" and len(names) == 5  # no pooler


def test_tiny_gpt2_ties_and_final_norm():
    cfg = transformers.GPT2Config(vocab_size=40, n_embd=16, n_layer=2, n_head=2, n_positions=32,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    groups = layer_groups(model)
    # token + position embeddings together; the final LayerNorm with the last block;
    # the LM head is tied to the token embedding, counted once
    assert [g.name for g in groups] == ["transformer.wte", "transformer.h.0", "transformer.h.1"]
    assert groups[0].names == ["transformer.wte.weight", "transformer.wpe.weight"]
    assert groups[-1].names[-2:] == ["transformer.ln_f.weight", "transformer.ln_f.bias"]
    _covers_each_parameter_once(model, groups)


def test_explicit_patterns():
    net = MLP(4, [8, 8], 2)
    groups = layer_groups(net, ["block0", "block1", "*"])
    assert [g.name for g in groups] == ["block0", "block1", "*"]
    assert groups[2].names == ["head.weight", "head.bias"]
    groups = layer_groups(net, {"body": ["block0", "block1"], "top": "head"})
    assert [(g.name, len(g.params)) for g in groups] == [("body", 4), ("top", 2)]
    with pytest.raises(ConfigError, match="match no pattern"):
        layer_groups(net, ["block*"])
    with pytest.raises(ConfigError, match="gets no parameter"):
        layer_groups(net, ["*", "head"])
    with pytest.raises(ConfigError, match="list of patterns"):
        layer_groups(net, "block0")


def test_single_module_is_one_group():
    assert [g.name for g in layer_groups(nn.Linear(2, 3))] == ["model"]
    with pytest.raises(ConfigError, match="no parameters"):
        layer_groups(nn.ReLU())


def test_tiny_t5_encoder_then_decoder_stacks():
    cfg = transformers.T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=32, num_layers=2,
                                num_decoder_layers=2, num_heads=2, decoder_start_token_id=0)
    model = transformers.T5ForConditionalGeneration(cfg)
    groups = layer_groups(model)
    assert [g.name for g in groups] == [
        "shared", "encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1",
    ]  # fmt: skip
    assert groups[2].names[-1] == "encoder.final_layer_norm.weight"
    _covers_each_parameter_once(model, groups)
