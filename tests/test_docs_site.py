"""The API reference: mkdocs builds it with --strict, and every public name is in it."""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradwise

ROOT = Path(__file__).resolve().parents[1]

# the API pages (docs/api/NAME.md) and the modules each one documents
PAGES = {sub: [f"gradwise.{sub}"] for sub in gradwise._SUBPACKAGES}
PAGES["train"].append("gradwise.train.metrics")
PAGES["linear"].append("gradwise.linear.plotting")
PAGES["config"] = ["gradwise.config"]
PAGES["demo"] = ["gradwise.demo"]
PAGES["recipes"] = [f"gradwise.recipes.{m}" for m in ("train", "finetune", "instruct", "linear")]


def _public(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    # no __all__ (gradwise.errors, the recipes): what the module itself defines
    return [n for n, v in vars(module).items() if not n.startswith("_")
            and getattr(v, "__module__", None) == module_name]


def _fences():
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("_doctests", ROOT / "docs" / "api" / "_doctests.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.fence_doctests


def test_every_subpackage_has_an_api_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert (ROOT / "docs" / "api" / f"{page}.md").is_file(), page
        assert f"api/{page}.md" in nav, page
    for guide in (ROOT / "docs").glob("*.md"):
        assert f": {guide.name}\n" in nav, f"{guide.name} is not in mkdocs.yml's nav"


def test_doctests_are_fenced_outside_examples_sections():
    fence = _fences()
    text = (
        "Sum.\n\n>>> [n for n in 'ab']\n['a', 'b']\n\nMore text.\n\n"
        "Example:\n    >>> 1 + 1\n    2\n\nExamples:\n    >>> 2 + 2\n    4\n"
    )
    assert fence(text) == (
        "Sum.\n\n```pycon\n>>> [n for n in 'ab']\n['a', 'b']\n```\n\nMore text.\n\n"
        "Example:\n    ```pycon\n    >>> 1 + 1\n    2\n    ```\n\nExamples:\n    >>> 2 + 2\n    4\n"
    )
    assert fence("No doctest here.\n") == "No doctest here.\n"


@pytest.mark.slow
def test_strict_build_has_every_public_name(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "WARNING" not in out.stderr, out.stderr[-3000:]

    missing = []
    for page, modules in PAGES.items():
        html = (site / "api" / f"{page}.html").read_text()
        ids = set(re.findall(r'id="([^"]+)"', html))
        for module in modules:
            names = _public(module)
            assert names, module
            missing += [f"{module}.{n}" for n in names if f"{module}.{n}" not in ids]
    assert not missing, missing
    # the names `import gradwise` re-exports, on their subpackage's page
    for name, sub in gradwise._NAMES.items():
        assert f'id="gradwise.{sub}.{name}"' in (site / "api" / f"{sub}.html").read_text(), name

    # doctests are code, not paragraphs with reference links; nothing is fetched
    nn = (site / "api" / "nn.html").read_text()
    assert """<span class="go">['block0', 'block1', 'head']</span>""" in nn  # MLP's doctest output
    for page in site.rglob("*.html"):
        assert "<p>&gt;&gt;&gt;" not in page.read_text(), page
        assert "fonts.googleapis.com" not in page.read_text(), page
    for guide in (ROOT / "docs").glob("*.md"):
        assert (site / guide.with_suffix(".html").name).is_file(), guide.name
