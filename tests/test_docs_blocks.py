"""Every code block of README.md and docs/*.md runs, or says why it does not.

``python`` blocks: the blocks of one page run in order in one namespace (a
page reads top to bottom), in a temporary directory that holds the
repository's ``examples/``, with stand-in data under the names the pages use
for the reader's own (``X``, ``y``, ``X_train``, ``y_train``, ...). Every block
runs: one that stands for the reader's own model or data builds a tiny one
(a 16-wide BERT, a base of seconds). A block whose first line is ``# doctest:
skip (reason)`` would not run; none is allowed (``MAX_SKIPPED``).

Shell blocks (``bash``, ``console``, ``sh``, or no language): every ``gradwise`` command is
either run (the cheap ones, :data:`RUN`, through the CLI) or listed in
:data:`NOT_RUN` with the reason; a new command in the docs fails this test
until it is put in one of the two.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"^#\s*doctest:\s*skip\b(.*)$")
MAX_SKIPPED = 0  # every python block of the README and docs/ runs

# cheap commands, run as written (from a directory holding examples/)
RUN = {
    "gradwise demo --list",
    "gradwise linear examples/linear_sparse.yaml",
}

# commands not run here, and why (most are run by their own tests with tiny overrides)
_LONG = "minutes of training; the same path runs with a tiny override in its own test"
NOT_RUN = {
    "gradwise demo": "every quick section: minutes; tests/demo runs each section",
    "gradwise demo --check": "every section over 10 runs: long; tests/demo/test_claims.py runs the check",
    "gradwise demo train": _LONG,
    "gradwise train examples/digits.yaml": _LONG + " (tests/test_examples.py)",
    "gradwise train examples/digits.yaml --set optimizer.lr=0.01 --set model.dropout=0.3": _LONG,
    "gradwise train examples/digits.yaml --resume": "needs an interrupted run (tests/test_cli_runs.py)",
    "gradwise report runs/digits": "needs runs/digits (tests/report re-draw a run's report)",
    "gradwise lr-find examples/digits.yaml": "a range test on digits (tests/test_steps.py runs it on iris)",
    "gradwise sweep CONFIG --jobs 2": "CONFIG is a placeholder",
    "gradwise finetune CONFIG": "CONFIG is a placeholder",
    "gradwise instruct init-base --out runs/base": "pretrains for minutes (tests/instruct)",
    "gradwise instruct CONFIG": "CONFIG is a placeholder",
    "gradwise sweep examples/sweep_weight_decay.yaml": _LONG + " (tests/sweep)",
    "gradwise sweep examples/sweep_weight_decay.yaml --jobs 2": _LONG + " (tests/sweep)",
    "gradwise sweep examples/sweep_weight_decay.yaml --set sweep.n_trials=40 --set name=wd2": _LONG,
    "gradwise sweep CONFIG --storage postgresql://sweeper:PASSWORD@db.example/sweeps": (
        "needs a PostgreSQL server (tests/sweep/test_sweep_postgres.py starts one)"
    ),
    'gradwise sweep examples/sweep_weight_decay.yaml --jobs 2 --storage '
    '"postgresql://sweeper:${SWEEP_PASSWORD}@db.example:5432/sweeps"': "a shared PostgreSQL server",
    "gradwise instruct examples/instruct.yaml": _LONG + " (tests/test_examples_finetune_instruct.py)",
    "gradwise finetune examples/finetune_digits.yaml": (
        _LONG + " (tests/test_examples_finetune_instruct.py)"
    ),
}


def _blocks(page: Path, kinds: tuple[str, ...]) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) in kinds
    ]


def _stand_in_data() -> dict:
    """The data the pages' blocks call ``X``/``y`` (and ``X_train``...): digits-shaped tensors.

    64 features, 10 classes, split 300 / 100 / 100, as a reader's own data would be.
    """
    import torch

    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 64, generator=g)
    y = X[:, :10].argmax(dim=1)
    return {"X": X, "y": y, "X_train": X[:300], "y_train": y[:300], "X_val": X[300:400],
            "y_val": y[300:400], "X_test": X[400:], "y_test": y[400:]}  # fmt: skip


def _python_pages() -> list[Path]:
    return [p for p in PAGES if _blocks(p, ("python",))]


def _commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for line_no, body in _blocks(page, ("bash", "console", "sh", "shell", "")):
            for line in body.replace("\\\n", " ").splitlines():
                cmd = line.split("#", 1)[0].strip().removeprefix("$ ")
                if cmd.startswith("gradwise "):
                    found.append((f"{page.name}:{line_no}", " ".join(cmd.split())))
    return found


def test_skipped_python_blocks_are_few_and_give_a_reason():
    skipped = []
    for page in PAGES:
        for line_no, body in _blocks(page, ("python",)):
            m = SKIP.match(body.splitlines()[0]) if body.strip() else None
            if m:
                assert m.group(1).strip(" -—:()"), f"{page.name}:{line_no}: skip without a reason"
                skipped.append(f"{page.name}:{line_no}")
    assert len(skipped) <= MAX_SKIPPED, skipped


@pytest.mark.slow
@pytest.mark.parametrize("page", _python_pages(), ids=lambda p: p.name)
def test_python_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    import torch

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    namespace: dict = {"__name__": "__docs__", **_stand_in_data()}
    try:
        for line_no, body in _blocks(page, ("python",)):
            if SKIP.match(body.splitlines()[0] if body.strip() else ""):
                continue
            try:
                exec(compile(body, f"{page.name}:{line_no}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{page.name}, block at line {line_no}: {exc!r}") from exc
    finally:
        torch.set_num_threads(threads)


def test_every_documented_command_is_run_or_has_a_reason():
    unknown = [(where, cmd) for where, cmd in _commands() if cmd not in RUN and cmd not in NOT_RUN]
    assert unknown == [], "put each in RUN (cheap) or NOT_RUN (with the reason)"
    assert all(reason for reason in NOT_RUN.values())


@pytest.mark.parametrize("command", sorted(RUN))
def test_cheap_documented_commands_run(command, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from gradwise.cli import app

    assert command in {cmd for _, cmd in _commands()}, "RUN lists a command the docs no longer show"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
