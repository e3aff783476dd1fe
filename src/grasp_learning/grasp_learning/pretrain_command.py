"""`pretrain` console command of grasp_learning: the key-point pretraining of Q_s (grasp_core.pretrain_cli.main).

`ros2 run grasp_learning pretrain --dataset DIR --out q_s.safetensors [--profile fast] [--epochs N] ...`
(any `--ros-args ...` tail that a launcher appends is ignored).
"""
from __future__ import annotations

import sys

from grasp_core.pretrain_cli import main as pretrain_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:
        argv = argv[:argv.index("--ros-args")]
    return pretrain_main(argv)


if __name__ == "__main__":
    sys.exit(main())
