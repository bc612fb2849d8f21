"""One rank of the 2-process recipe tests: ``python _fsdp_recipe_worker.py KIND CONFIG.json``.

KIND is ``finetune`` or ``instruct``; the config (prepared by the test, with
``training.distributed: fsdp``) is run by that recipe, as ``torchrun`` would
start ``gradwise finetune`` / ``gradwise instruct`` on each rank. Rank 0
writes the run directory (``metrics.jsonl`` holds every step's loss, the
mean over the ranks).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from gradwise.config import parse_config


def main(kind: str, config: Path) -> None:
    torch.set_num_threads(1)
    raw = json.loads(config.read_text())
    if kind == "finetune":
        from gradwise.finetune._config import FinetuneConfig
        from gradwise.recipes.finetune import run

        run(parse_config(raw, FinetuneConfig), progress=False)
    elif kind == "instruct":
        from gradwise.instruct import InstructConfig
        from gradwise.recipes.instruct import sft

        sft(parse_config(raw, InstructConfig), progress=False)
    else:
        raise SystemExit(f"unknown recipe {kind!r}")
    import torch.distributed as dist

    if dist.is_initialized():  # meet once more, then leave without C++ teardown
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
