"""Running sweeps: grid coverage, report, resume, retry of a dead worker's trial, pruning."""

import itertools
import json
import os
import subprocess
import sys

import optuna
import pytest
import torch
import yaml

from gradwise.config import parse_config
from gradwise.errors import ConfigError
from gradwise.sweep import (
    TrialPruning,
    load_sweep_config,
    open_study,
    parse_sweep,
    report_sweep,
    run_sweep,
)
from gradwise.sweep._storage import storage_url
from gradwise.train import Trainer

LRS = [0.003, 0.3]
ACTS = ["relu", "tanh"]


def grid_cfg(base, **spec):
    params = {"optimizer.lr": {"values": LRS}, "model.activation": {"values": ACTS}}
    return parse_sweep(
        base(sweep={"method": "grid", "metric": "val_accuracy", "params": params, **spec})
    )


def study_of(cfg):
    return open_study(cfg, storage_url(cfg, None))


def test_grid_sweep_covers_the_grid_and_writes_the_report(tmp_path, no_trial_reports, base):
    cfg = grid_cfg(base)
    result = run_sweep(cfg, verbose=False)
    assert result.ran == 4 and len(result.trials) == 4
    seen = {(t["optimizer.lr"], t["model.activation"]) for t in result.trials}
    assert seen == {(str(lr), act) for lr, act in itertools.product(LRS, ACTS)}
    assert all(t["state"] == "complete" and t["epochs"] == 2 for t in result.trials)
    # the value of a trial is its final val accuracy, as its own results.json says
    run_dir = result.run_dir
    for t in result.trials:
        results = json.loads((run_dir / f"trials/trial-{t['trial']:04d}/results.json").read_text())
        assert t["val_accuracy"] == results["val"]["accuracy"]
    best = max(result.trials, key=lambda t: t["val_accuracy"])
    assert result.best_value == best["val_accuracy"]
    assert str(result.best_params["optimizer.lr"]) == best["optimizer.lr"]
    assert (run_dir / "study.db").is_file()
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == ["curves.png", "heatmap.png"]
    page = result.report.read_text()
    assert "Best trial" in page and page.count("<tr>") >= 6
    best_cfg = parse_config(yaml.safe_load((run_dir / "best_config.yaml").read_text()))
    assert best_cfg.optimizer.lr == result.best_params["optimizer.lr"]
    assert best_cfg.model.activation == result.best_params["model.activation"]
    # the report can be redrawn from the directory alone
    again = report_sweep(run_dir)
    assert again.best_value == result.best_value and again.ran == 0


def test_resume_continues_the_study_without_redoing_trials(tmp_path, no_trial_reports, base):
    def cfg(n):
        params = {"optimizer.lr": {"low": 1e-3, "high": 0.3, "log": True}}
        return parse_sweep(
            base(sweep={"method": "random", "n_trials": n, "params": params, "seed": 3})
        )

    first = run_sweep(cfg(2), verbose=False)
    assert first.ran == 2
    more = run_sweep(cfg(3), verbose=False)
    assert more.ran == 1
    assert [t["trial"] for t in more.trials] == [0, 1, 2]
    assert more.trials[:2] == first.trials  # kept as they were
    assert run_sweep(cfg(3), verbose=False).ran == 0  # complete: nothing to do
    # trial k's draw depends on (seed, k) only: a fresh study repeats the same points
    other = tmp_path / "other"
    fresh = run_sweep(cfg(2).model_copy(update={"runs_dir": str(other)}), verbose=False)
    assert [t["optimizer.lr"] for t in fresh.trials] == [t["optimizer.lr"] for t in first.trials]
    changed = cfg(3).model_copy(
        update={
            "sweep": cfg(3).sweep.model_copy(
                update={"metric": "val_accuracy", "direction": "maximize"}
            )
        }
    )
    with pytest.raises(ConfigError, match="made to minimize; this config says maximize"):
        run_sweep(changed, verbose=False)


def test_changed_search_space_is_refused(tmp_path, no_trial_reports, base):
    run_sweep(grid_cfg(base, n_trials=1), verbose=False)
    params = {"optimizer.lr": {"values": [0.1, 0.2]}}
    other = parse_sweep(base(sweep={"method": "grid", "metric": "val_accuracy",
                                              "params": params}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"different sweep \(params changed\)"):
        run_sweep(other, verbose=False)


def test_trial_of_a_dead_worker_is_run_again(tmp_path, no_trial_reports, base):
    cfg = grid_cfg(base)
    study = study_of(cfg)
    # a worker on this host that died in the middle of trial 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    trial = study.ask()
    trial.suggest_categorical("optimizer.lr", LRS)
    trial.suggest_categorical("model.activation", ACTS)
    trial.set_user_attr("worker", f"{os.uname().nodename}:{dead}")
    result = run_sweep(cfg, verbose=False)
    states = [t["state"] for t in result.trials]
    assert states.count("fail") == 1 and states.count("complete") == 4
    assert result.ran == 4
    # the dead trial's grid point was run again (as a retry), and the grid is covered once
    done = [t for t in result.trials if t["state"] == "complete"]
    assert {(t["optimizer.lr"], t["model.activation"]) for t in done} == {
        (str(lr), act) for lr, act in itertools.product(LRS, ACTS)
    }
    retry = next(t for t in study_of(cfg).trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.state.name == "COMPLETE" and retry.params == trial.params


def test_pruning_stops_a_bad_trial(tmp_path, no_trial_reports, base):
    params = {"optimizer.lr": {"low": 1e-6, "high": 0.3, "log": True}}
    spec = {"method": "random", "n_trials": 2, "metric": "val_accuracy", "params": params,
            "pruner": "median", "prune_startup": 1, "prune_warmup": 0}  # fmt: skip
    cfg = parse_sweep(base(sweep=spec, training={"epochs": 4, "batch_size": 16}))
    study = study_of(cfg)
    study.enqueue_trial({"optimizer.lr": 0.1})  # learns: sets the median
    study.enqueue_trial({"optimizer.lr": 1e-6})  # stays at chance: pruned
    result = run_sweep(cfg, verbose=False)
    good, bad = result.trials
    assert good["state"] == "complete" and good["epochs"] == 4
    assert bad["state"] == "pruned" and bad["epochs"] == 1
    log = (result.run_dir / "trials/trial-0001/metrics.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in log if '"event"' in x]
    # the divergence guard also says which epoch's weights the run ends on
    assert [e["kind"] for e in events if e["kind"] != "best_weights"] == ["pruned"]


def test_trial_pruning_callback_against_optuna_directly():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
    )
    first = study.ask()
    for epoch in (1, 2, 3):
        first.report(0.9, step=epoch)
    study.tell(first, 0.9)
    trial = study.ask()
    X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    model = torch.nn.Linear(4, 2)
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.0),
        torch.nn.CrossEntropyLoss(),
        metrics=["accuracy"],
        epochs=3,
        callbacks=[TrialPruning(trial, "val_accuracy")],
    )
    history = t.fit((X, y), (X, y))
    assert len(history) == 1  # stopped after epoch 1
    assert trial.should_prune()
    assert history.events[0]["kind"] == "pruned"
    with pytest.raises(ConfigError, match="'val_f1' is not in the epoch record"):
        t2 = Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.0),
            torch.nn.CrossEntropyLoss(),
            callbacks=[TrialPruning(study.ask(), "val_f1")],
        )
        t2.fit((X, y), (X, y))


def test_diagnostics_per_trial_and_bad_storage(tmp_path, no_trial_reports, base):
    params = {"model.activation": {"values": ["sigmoid", "relu"]}}
    cfg = parse_sweep(base(model={"hidden": [8, 8, 8]},
                           sweep={"method": "grid", "params": params, "diagnostics": 1}))  # fmt: skip
    result = run_sweep(cfg, verbose=False)
    study = study_of(cfg)
    for t in study.trials:
        diag = t.user_attrs["run"]["diagnostics"]
        assert diag["layers"] == ["block0.linear", "block1.linear", "block2.linear", "head"]
        assert len(diag["grad_norm"]) == 2 and len(diag["grad_norm"][0]) == 4  # epoch × layer
        assert set(diag["saturated" if t.params["model.activation"] == "sigmoid" else "dead"]) == {
            "block0.act",
            "block1.act",
            "block2.act",
        }
    assert (result.run_dir / "plots/grad_norm_depth.png").is_file()
    with pytest.raises(ConfigError, match="storage must be a database URL"):
        run_sweep(cfg, storage="study.db", verbose=False)
    with pytest.raises(ConfigError, match="jobs must be an int >= 1"):
        run_sweep(cfg, jobs=0, verbose=False)


def test_load_sweep_config_with_overrides(tmp_path, base):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base(sweep={"method": "grid", "params": {
        "optimizer.lr": {"values": [0.1]}}})))  # fmt: skip
    cfg = load_sweep_config(path, ["sweep.method=random", "sweep.n_trials=3", "name=x"])
    assert (cfg.sweep.method, cfg.sweep.n_trials, cfg.name) == ("random", 3, "x")
    # a parameter's name keeps its dots; a new one can be added
    cfg = load_sweep_config(path, ["sweep.params.optimizer.lr.values=[0.2, 0.3]",
                                   "sweep.params.model.dropout={values: [0.0, 0.5]}"])  # fmt: skip
    assert cfg.sweep.params["optimizer.lr"].values == [0.2, 0.3]
    assert cfg.sweep.params["model.dropout"].values == [0.0, 0.5]
    with pytest.raises(ConfigError, match="sweep.n_trials"):
        load_sweep_config(path, ["sweep.n_trials=0"])


def test_a_trial_is_its_training_run(tmp_path, base, monkeypatch):
    """No report.html per trial (trial_reports off), CPU seconds kept, no should_prune reads
    without a pruner, and the data loaded once per worker, before the first trial."""
    import gradwise.recipes.train as recipe

    loads = []
    real_load = recipe.load_table
    monkeypatch.setattr(recipe, "load_table", lambda cfg: loads.append(1) or real_load(cfg))
    asked = []
    real_ask = optuna.trial.Trial.should_prune
    monkeypatch.setattr(
        optuna.trial.Trial, "should_prune", lambda t: asked.append(1) or real_ask(t)
    )
    params = {"optimizer.lr": {"values": LRS}}
    cfg = parse_sweep(base(sweep={"method": "grid", "params": params, "pruner": "none"}))
    result = run_sweep(cfg, verbose=False)
    assert len(result.trials) == 2 and asked == []
    assert len(loads) == 1  # the worker's warm-up; its trials reuse the table
    for t in study_of(cfg).get_trials():
        run = t.user_attrs["run"]
        assert 0 < run["cpu_seconds"] and 0 < run["seconds"]
        trial_dir = cfg.run_dir / "trials" / f"trial-{t.number:04d}"
        assert (trial_dir / "results.json").is_file() and (trial_dir / "config.yaml").is_file()
        assert not (trial_dir / "report.html").exists()
    assert (cfg.run_dir / "report.html").is_file()  # the sweep's own report
    # with a pruner, each epoch asks it
    cfg = parse_sweep(base(name="pr", sweep={"method": "grid", "params": params,
                                             "pruner": "median"}))  # fmt: skip
    run_sweep(cfg, verbose=False)
    assert len(asked) == 2 * cfg.training.epochs


def test_gradwise_threads_holds_for_the_whole_worker(tmp_path, no_trial_reports, base, monkeypatch):
    """GRADWISE_THREADS=N sets torch's threads for all of a worker's work (not only inside fit)."""
    import gradwise.recipes.train as recipe

    seen = []
    real = recipe.prepare
    monkeypatch.setattr(
        recipe,
        "prepare",
        lambda cfg, table=None: seen.append(torch.get_num_threads()) or real(cfg, table),
    )
    monkeypatch.setenv("GRADWISE_THREADS", "2")
    cfg = parse_sweep(base(sweep={"method": "grid", "params": {"optimizer.lr": {"values": LRS}}}))
    assert torch.get_num_threads() == 1  # the suite's own setting
    run_sweep(cfg, verbose=False)
    assert seen == [2, 2]  # data, model and optimizer built outside fit
    assert torch.get_num_threads() == 1  # the caller's count is back


def test_a_sweep_over_the_data_loads_only_each_trials_data(
    tmp_path, no_trial_reports, base, monkeypatch
):
    """The worker's warm-up skips the base data when trials choose their own; each
    dataset is loaded once however many trials use it."""
    import gradwise.recipes.train as recipe

    loaded = []
    real_load = recipe.load_table
    monkeypatch.setattr(recipe, "load_table", lambda cfg: loaded.append(cfg.name) or real_load(cfg))
    params = {"data.name": {"values": ["wine", "breast_cancer"]}, "optimizer.lr": {"values": LRS}}
    cfg = parse_sweep(base(sweep={"method": "grid", "params": params}))
    result = run_sweep(cfg, verbose=False)
    assert len(result.trials) == 4
    assert sorted(loaded) == ["breast_cancer", "wine"]  # not the base's iris


def _statements_of(fn):
    """The SQL statements ``fn()`` sends to any database (SQLAlchemy's public event API)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent = []

    def count(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return sent


def test_no_pruner_no_database_round_trips_per_epoch(tmp_path, no_trial_reports, base):
    """Without a pruner a trial's database traffic does not grow with its epochs (no
    intermediate values, no should_prune reads); with one, every epoch is reported."""
    params = {"optimizer.lr": {"values": LRS}}
    sent, trials = {}, {}
    for epochs in (2, 6):
        raw = base(name=f"e{epochs}", sweep={"method": "grid", "params": params, "pruner": "none"})
        raw["training"]["epochs"] = epochs
        cfg = parse_sweep(raw)
        sent[epochs] = _statements_of(lambda cfg=cfg: run_sweep(cfg, verbose=False))
        trials[epochs] = study_of(cfg).get_trials()
    assert len(sent[2]) == len(sent[6])  # 4 more epochs per trial: not one more statement
    assert not any("trial_intermediate_values" in s and "INSERT" in s for s in sent[6])
    assert [len(t.user_attrs["run"]["history"]) for t in trials[6]] == [6, 6]  # epochs kept
    assert all(t.intermediate_values == {} for t in trials[6])
    # a pruner gets every epoch's value
    raw = base(name="pr", sweep={"method": "grid", "params": params, "pruner": "median"})
    cfg = parse_sweep(raw)
    run_sweep(cfg, verbose=False)
    assert [sorted(t.intermediate_values) for t in study_of(cfg).get_trials()] == [[1, 2]] * 2


def test_workers_on_one_machine_share_its_cores(tmp_path, no_trial_reports, base, monkeypatch):
    """Separately started workers of a study on one host take cores // live local workers
    threads each, counted before every trial; alone, a worker keeps torch's count."""
    import gradwise.recipes.train as recipe
    import gradwise.sweep._study as sweep_study
    from gradwise.sweep._workers import PREFIX, worker_id
    from gradwise.train import _threads

    for var in ("GRADWISE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sweep_study, "cores", lambda: 12)
    torch.set_num_threads(_threads._AT_IMPORT)  # as if nobody chose a count (conftest restores)
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    others = [subprocess.Popen(sleeper) for _ in range(2)]  # two more workers on this host
    seen = []
    real = recipe.prepare

    def prepare(cfg, table=None):
        seen.append(torch.get_num_threads())
        if others:  # one of the other workers ends during each trial
            p = others.pop()
            p.kill()
            p.wait()
        return real(cfg, table)

    monkeypatch.setattr(recipe, "prepare", prepare)
    params = {"optimizer.lr": {"values": [0.003, 0.03, 0.3]}}
    cfg = parse_sweep(base(sweep={"method": "grid", "params": params}))
    study = study_of(cfg)
    host = worker_id().rpartition(":")[0]
    try:
        for p in others:
            study.set_user_attr(f"{PREFIX}{host}:{p.pid}", True)
        study.set_user_attr(f"{PREFIX}elsewhere:{others[0].pid}", True)  # another machine's
        run_sweep(cfg, verbose=False)
    finally:
        for p in others:
            p.kill()
            p.wait()
    assert seen == [12 // 3, 12 // 2, _threads._AT_IMPORT]
    assert study.user_attrs[PREFIX + worker_id()] is False  # gone once its loop ended
    # GRADWISE_THREADS wins over the share
    monkeypatch.setenv("GRADWISE_THREADS", "3")
    seen.clear()
    cfg = parse_sweep(base(name="forced", sweep={"method": "grid", "params": params}))
    run_sweep(cfg, verbose=False)
    assert seen == [3, 3, 3]


def test_local_worker_count_and_share():
    from gradwise.sweep._workers import PREFIX, local_workers, thread_share, worker_id

    me = worker_id()
    host = me.rpartition(":")[0]
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    attrs = {
        PREFIX + me: True,
        f"{PREFIX}{host}:{os.getppid()}": True,  # alive
        f"{PREFIX}{host}:{done.stdout.strip()}": True,  # its process has ended
        f"{PREFIX}{host}:1": False,  # unregistered
        f"{PREFIX}other-host:{os.getppid()}": True,  # another machine
        "sweep": {"method": "grid"},
    }
    assert local_workers(attrs, me) == 2
    assert local_workers({}, me) == 1
    assert [thread_share(2, 2), thread_share(16, 3), thread_share(2, 5)] == [1, 5, 1]
    assert thread_share(8, 1) is None and thread_share(8, 1, cap=4) == 4
    assert thread_share(8, 4, cap=4) == 2


def test_a_trial_on_the_workers_table_equals_a_run_of_its_config(tmp_path, no_trial_reports, base):
    """The worker's loaded table is not changed by its trials: the last trial of a sweep
    ends exactly as ``gradwise train`` of that trial's config on freshly loaded data."""
    from gradwise.recipes.train import run

    params = {"optimizer.lr": {"values": [0.3, 0.03, 0.003]}}
    raw = base(sweep={"method": "grid", "params": params, "pruner": "none"})
    raw["data"]["standardize"] = True
    cfg = parse_sweep(raw)
    run_sweep(cfg, verbose=False)
    last = max(study_of(cfg).get_trials(), key=lambda t: t.number)
    trial_cfg = parse_config(yaml.safe_load(
        (cfg.run_dir / "trials" / f"trial-{last.number:04d}" / "config.yaml").read_text()
    ))  # fmt: skip
    alone = run(trial_cfg.model_copy(update={"name": "alone"}), progress=False, report=False)
    assert last.user_attrs["run"]["results"] == alone.results
