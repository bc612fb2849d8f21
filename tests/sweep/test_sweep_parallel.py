"""Several workers on one study: two processes on one SQLite file, and --jobs."""

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from gradwise.sweep import parse_sweep, run_sweep
from gradwise.sweep._storage import open_storage, storage_url

WORKER = Path(__file__).with_name("_sweep_worker.py")


def random_cfg(base, n):
    params = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}
    return base(sweep={"method": "random", "n_trials": n, "params": params, "seed": 1})


def trials_in(cfg):
    study = optuna.load_study(study_name=cfg.name, storage=open_storage(storage_url(cfg, None)))
    return study.get_trials(deepcopy=False)


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(tmp_path, base):
    raw = random_cfg(base, 6)
    (tmp_path / "cfg.json").write_text(json.dumps(raw))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path / "cfg.json"), str(barrier), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    trials = trials_in(parse_sweep(raw))
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    # every trial ran exactly once, in one of the two processes, and no more than asked
    assert sum(o["ran"] for o in outs) == len(done) == 6
    assert sorted(t.number for t in done) == list(range(6))
    assert len({t.user_attrs["worker"] for t in done}) == sum(o["ran"] > 0 for o in outs)
    assert all(o["trials"] == 6 for o in outs)  # each waited for the other to finish


@pytest.mark.slow
def test_jobs_run_local_worker_processes(tmp_path, base):
    cfg = parse_sweep(random_cfg(base, 4))
    result = run_sweep(cfg, jobs=2, verbose=False)
    assert result.ran == 4 and [t["trial"] for t in result.trials] == [0, 1, 2, 3]
    assert all(t["state"] == "complete" for t in result.trials)
    # a worker that lost the race for the last slot closed its extra trial as a surplus one
    kept = [t for t in trials_in(cfg) if not t.user_attrs.get("surplus")]
    assert len(kept) == 4
    workers = {t.user_attrs["worker"] for t in kept}
    assert 1 <= len(workers) <= 2
