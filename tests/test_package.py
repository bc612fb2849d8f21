import re
import shutil
import subprocess
import sys

import pytest

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


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
        import tomli as tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def test_version_is_read_from_the_installed_metadata():
    from importlib import metadata

    assert gradwise.__version__ == metadata.version("gradwise")
    assert gradwise.__version__ == _pyproject()["version"]


def test_version_falls_back_when_gradwise_is_not_installed():
    code = (
        "import importlib.metadata as m\n"
        "def missing(name): raise m.PackageNotFoundError(name)\n"
        "m.version = missing\n"
        "import gradwise; print(gradwise.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0+unknown"


def test_license_file_matches_the_metadata():
    project = _pyproject()
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_changelog_has_a_section_for_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## {_pyproject()['version']}\n" in text


def test_metadata_is_complete():
    project = _pyproject()
    for field in ("description", "readme", "requires-python", "keywords", "classifiers"):
        assert project.get(field), field
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]  # the SPDX field rules


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository():
    """`make wheel-check`: build, fresh venv with torch, the tour with no extras then [demo]."""
    pytest.importorskip("build")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        ["make", "--no-print-directory", "wheel-check", f"PYTHON={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=2700,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    listed = {line.split()[0] for line in lines if line and not line.startswith((" ", "="))}
    assert {"train", "instruct", "minilm"} <= listed
    assert any(line.strip().startswith("test_accuracy:") for line in lines)
    assert "error: the instruct demo needs transformers: pip install 'gradwise[demo]'" in out.stdout.splitlines()
    assert "Traceback" not in out.stdout + out.stderr
    # no extras: the whole tour ran, each section needing an extra said which in one line
    tour = lines[lines.index("== the quick tour, no extras"):]
    reasons = [line.strip() for line in tour if line.strip().startswith("skipped: ")]
    assert reasons and all(re.search(r"pip install 'gradwise\[(demo|hf|sweep)\]'$", r) for r in reasons)
    skipped = [line.split()[0] for line in tour if line.split()[1:2] == ["skipped:"]]
    assert {"instruct", "minilm"} <= set(skipped) and len(skipped) == len(reasons)
    done = tour[tour.index("== tour done") + 1:]
    done = done[:next(i for i, line in enumerate(done) if line.startswith("=="))]
    ran = [line.split()[0] for line in done if line.split()[1:2] != ["skipped:"]]
    assert {"train", "lr", "linear"} <= set(ran)
    # with [demo]: sections that were skipped run (the make variable WHEEL_DEMO)
    with_demo = lines[next(i for i, line in enumerate(lines) if line.startswith("== with [demo]")):]
    demo_sections = with_demo[0].split(":")[-1].split()
    assert "instruct" in demo_sections and set(demo_sections) <= set(skipped)
    for name in demo_sections:
        start = with_demo.index(f"== demo: {name}")
        assert any(line.startswith("   seconds: ") for line in with_demo[start:]), name
    n_data = sum(1 for f in (ROOT / "src" / "gradwise").rglob("*")
                 if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts)
    assert f"package data: {n_data} files" in lines
    assert lines[-1] == "wheel-check: ok"


def test_the_whole_tour_skips_a_section_whose_extra_is_missing(monkeypatch, tmp_path):
    """`gradwise demo` without an extra: one line naming it, then the next section."""
    from typer.testing import CliRunner

    import gradwise.demo as demo
    from gradwise._optional import require
    from gradwise.cli import app
    from gradwise.demo import DemoSection

    ran = []

    def fn(name):
        def section(out_dir, quick):
            ran.append((name, quick))
            if name == "needs-hf":
                require("no_such_module_gw20", "hf", "the needs-hf demo", "transformers")
            return {"score": 0.5, "seconds": 0.1}
        return section

    names = ["first", "needs-hf", "last"]
    fake = [DemoSection(n, n, fn(n), i) for i, n in enumerate(names)]
    monkeypatch.setattr(demo, "sections", lambda: fake)
    monkeypatch.setattr(demo, "run_section", lambda name, out, quick: fn(name)(out, quick))
    runner = CliRunner()

    result = runner.invoke(app, ["demo", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert ran == [("first", True), ("needs-hf", True), ("last", True)]
    lines = result.output.splitlines()
    skips = [line.strip() for line in lines if "skipped" in line and "needs-hf demo" in line]
    assert skips == ["skipped: the needs-hf demo needs transformers: pip install 'gradwise[hf]'"]
    assert lines.index("== demo: last") > lines.index("== demo: needs-hf")
    assert "   score: 0.5" in lines[lines.index("== demo: last"):]
    assert "Traceback" not in result.output

    # the one section asked for by name: the same line as an error, status 2
    ran.clear()
    result = runner.invoke(app, ["demo", "needs-hf", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: the needs-hf demo needs transformers: pip install 'gradwise[hf]'")
