"""Time per attempt of the experiment harness's loop (grasp_core.learning.LearningLoop), split into its parts.

Builds the loop as grasp_experiments.runner does (the `fast` profile, the `default` learning preset, the MuJoCo
world) and times, per attempt, the acting network's Q maps (`predict`), the simulated grasp and heightmap
(`sim`), and the learner's update (`update`, with its trunk features for the feature cache and its gradient
steps inside it), as wall-clock and process CPU seconds (all threads). Each inference backend given runs the
same seeds, so the rows compare like with like.

    PYTHONPATH=src/grasp_core python benchmarks/bench_learning_step.py --steps 30 --backends torch onnxruntime
Prints a table and writes benchmarks/results/learning_step.json and .md (with the 1-min load average).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "grasp_core"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from grasp_core.dqn import DQNLearner, warm_start  # noqa: E402
from grasp_core.learning import LearningLoop, learning_config  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.replay import ReplayStore  # noqa: E402
from grasp_core.rotation import BACKENDS, InferenceOptions, cpu_has_native_bf16  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402

# The fast profile's torch setting (before onnxruntime): bf16 only where the CPU has it natively.
TORCH_FAST = InferenceOptions(channels_last=True, bf16=True) if cpu_has_native_bf16() else \
    InferenceOptions(chunk_size=4)
PARTS = ("predict", "sim", "update", "update.trunk_features", "update.gradient_steps", "attempt")


class Timer:
    """Wall-clock and process-CPU seconds per named part, one entry per call."""

    def __init__(self):
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name].append(time.perf_counter() - wall)
                self.cpu[name].append(time.process_time() - cpu)
        return timed


def run(backend: str, steps: int, objects: int, seed: int, pretrained: str | None, warmup: int) -> dict:
    from grasp_core.sim import GraspWorld, SimConfig

    torch.manual_seed(seed)
    profile = get_profile("fast")
    qnet = profile.build_q_network()
    if pretrained:
        warm_start(qnet, pretrained)
    inference = InferenceOptions(backend="onnxruntime") if backend == "onnxruntime" else TORCH_FAST
    config = learning_config("default", seed=seed, inference=inference)
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        replay = ReplayStore(Path(tmp) / "replay")
        learner = DQNLearner(qnet, config.dqn, replay, profile=profile.name)
        workspace = VPG_SIM_WORKSPACE.with_resolution(profile.resolution)
        world = GraspWorld(SimConfig(num_objects=objects, seed=seed, workspace=workspace, auto_reset=False))
        try:
            loop = LearningLoop(learner, config, world, workspace, seed=seed)
            loop.acting.predict = timer.wrap("predict", loop.acting.predict)
            world.execute_grasp = timer.wrap("sim", world.execute_grasp)
            world.heightmap = timer.wrap("sim", world.heightmap)
            learner.update = timer.wrap("update", learner.update)
            learner._cached_features = timer.wrap("update.trunk_features", learner._cached_features)
            learner._gradient_step = timer.wrap("update.gradient_steps", learner._gradient_step)
            step = timer.wrap("attempt", loop.step)
            successes = sum(step().success for _ in range(steps))
        finally:
            world.close()
            replay.close()
    per_attempt = {}
    for part in PARTS:
        wall, cpu = timer.wall.get(part, []), timer.cpu.get(part, [])
        if part == "sim":  # execute_grasp and heightmap: two calls per attempt
            wall = list(np.add.reduceat(wall, np.arange(0, len(wall), 2))) if wall else wall
            cpu = list(np.add.reduceat(cpu, np.arange(0, len(cpu), 2))) if cpu else cpu
        if part.startswith("update."):  # several calls per update: summed per attempt
            wall = _per_attempt(wall, timer.wall["update"])
            cpu = _per_attempt(cpu, timer.cpu["update"])
        wall, cpu = wall[warmup:], cpu[warmup:]
        per_attempt[part] = {"wall_mean": float(np.mean(wall)), "wall_median": float(np.median(wall)),
                             "cpu_mean": float(np.mean(cpu))} if wall else None
    return {"backend": backend, "inference": dataclasses.asdict(inference), "steps": steps, "warmup": warmup,
            "successes": successes, "per_attempt": per_attempt}


def _per_attempt(values: list[float], updates: list[float]) -> list[float]:
    """Sub-part calls summed per update, assuming each update's calls are consecutive (the loop is sequential)."""
    if len(values) % len(updates) == 0:
        k = len(values) // len(updates)
        return [float(sum(values[i * k:(i + 1) * k])) for i in range(len(updates))]
    return [float(np.sum(values)) / len(updates)] * len(updates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS,
                        help="inference backends of the trunks to time, one after the other")
    parser.add_argument("--steps", type=int, default=30, help="attempts per backend")
    parser.add_argument("--warmup", type=int, default=3, help="first attempts left out of the means (exports)")
    parser.add_argument("--objects", type=int, default=10, help="objects per simulated scene")
    parser.add_argument("--seed", type=int, default=0, help="world and network seed")
    parser.add_argument("--threads", type=int, default=1, help="torch (and onnxruntime) threads, as the harness's "
                        "--threads")
    parser.add_argument("--pretrained", default=None, help="a pretrained Q_s checkpoint (default: random weights; "
                        "the time per attempt does not depend on them)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "learning_step.json"),
                        help="JSON file to write (a .md table beside it)")
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = []
    for backend in args.backends:
        results.append(run(backend, args.steps, args.objects, args.seed, args.pretrained, args.warmup))
        print(backend, json.dumps(results[-1]["per_attempt"]))
    load_after = os.getloadavg()
    head = ["backend"] + [f"{p} wall / cpu" for p in PARTS]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["backend"]] + [f"{v['wall_mean']:.3f} / {v['cpu_mean']:.3f}" if v else "-"
                                  for v in (r["per_attempt"][p] for p in PARTS)]
        rows.append("| " + " | ".join(cells) + " |")
    table = "\n".join(rows)
    print(table)
    record = {"benchmark": "learning_step", "what": "mean seconds per attempt of the harness loop (fast profile, "
              "default preset), after --warmup attempts; wall-clock and process CPU (all threads)",
              "threads": args.threads, "objects": args.objects, "seed": args.seed, "cpu_count": os.cpu_count(),
              "machine": platform.platform(), "torch": torch.__version__,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "pretrained": args.pretrained,
              "load_average_before": load_before, "load_average_after": load_after, "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"# Harness loop: seconds per attempt\n\n`fast` profile, `default` learning preset, {args.objects} objects, "
        f"seed {args.seed}, {args.threads} thread(s), mean of attempts {args.warmup + 1}-{args.steps} "
        "(wall-clock / process CPU of all threads). `sim` = the simulated grasp + heightmap; `update.*` are "
        f"inside `update`. 1-min load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}.\n\n"
        f"{table}\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
