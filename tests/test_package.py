import subprocess
import sys

import gradwise


def test_lazy_names_resolve_to_their_subpackage():
    import gradwise.nn
    import gradwise.train

    assert gradwise.Trainer is gradwise.train.Trainer
    assert gradwise.MLP is gradwise.nn.MLP


def test_every_public_name_resolves():
    for name in gradwise.__all__:
        assert getattr(gradwise, name) is not None, name


def test_import_does_not_load_torch():
    code = "import sys, gradwise; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
