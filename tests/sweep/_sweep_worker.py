"""A sweep worker process for the shared-study tests: python _sweep_worker.py CONFIG.json BARRIER_DIR ID."""

import json
import sys
import time
from pathlib import Path

import torch

import gradwise.recipes.train as recipe
from gradwise.sweep import parse_sweep, run_sweep

if __name__ == "__main__":
    config, barrier, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    recipe.write_report = lambda run_dir, **kw: run_dir / "report.html"
    cfg = parse_sweep(json.loads(config.read_text()))
    # start together: imports take seconds, and a worker that starts late finds nothing to do
    (barrier / me).touch()
    deadline = time.time() + 120
    while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    result = run_sweep(cfg, verbose=False)
    print(json.dumps({"ran": result.ran, "trials": len(result.trials)}))
