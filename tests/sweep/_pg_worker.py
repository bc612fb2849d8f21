"""A sweep worker "on another machine", for the PostgreSQL tests.

python _pg_worker.py CONFIG.json STORAGE_URL BARRIER_DIR ID N_WORKERS [victim]

Each worker names itself ``nodeID`` (as if on its own host, so only the
heartbeat can tell that another one died); heartbeats every second, stale
after 4. A victim touches ``BARRIER_DIR/victim-running`` inside its first
trial and then hangs until it is killed.
"""

import json
import socket
import sys
import time
from pathlib import Path

import torch

import gradwise.recipes.train as recipe
import gradwise.sweep._storage as storage
from gradwise.sweep import parse_sweep, run_sweep

if __name__ == "__main__":
    config, url, barrier = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    me, n, victim = sys.argv[4], int(sys.argv[5]), sys.argv[6:] == ["victim"]
    torch.set_num_threads(1)
    socket.gethostname = lambda: f"node{me}"
    storage.HEARTBEAT_S, storage.GRACE_S = 1, 4
    recipe.write_report = lambda run_dir, **kw: run_dir / "report.html"
    if victim:

        def hang(*args, **kwargs):
            (barrier / "victim-running").touch()
            time.sleep(600)

        recipe.run = hang
    cfg = parse_sweep(json.loads(config.read_text()))
    (barrier / me).touch()
    deadline = time.time() + 120
    while len([p for p in barrier.iterdir() if p.name != "victim-running"]) < n:
        if time.time() > deadline:
            sys.exit("the other workers did not start")
        time.sleep(0.05)
    result = run_sweep(cfg, storage=url, verbose=False)
    print(json.dumps({"ran": result.ran, "trials": len(result.trials)}))
