"""The same 4-run grid serial and on a local Ray with 2 CPUs, in one run: wall times, their ratio (goal: Ray <=
0.6 x serial on 2 cores), Ray's start-up, and the per-CPU throughput a user sizes a cluster with.

The grid: ours, vanilla, MoG and PoI, `--objects` objects, one seed, `--steps` attempts each, `fast` profile. The KL
Q_s that `ours` warm-starts from is pretrained once beforehand (small: `--pretrain-images` images, 1 epoch; not
timed) and copied into both experiment folders, so both times are the four learning runs alone.
- serial: `grasp-experiments run` as it is by default (--jobs 1: the runs one after another in this process, with
  torch threads = this machine's CPUs);
- Ray: `grasp-experiments run --ray --ray-cpus 2` (a local Ray started and stopped inside the timing; each run a
  task with 1 thread, 2 at a time).
Ray's start-up is timed on its own too (ray.init + shutdown of a local 2-CPU Ray, nothing run).
Throughput per CPU: attempts per second of one run's loop with 1 thread while every CPU runs one
(1 / its seconds per attempt, from done.json), per method; docs/results/full_grid_estimate.md is written from it
(`--estimate-only`: from the saved result, measuring nothing).
The 1-minute load average is sampled every 5 s through each phase: the machine may be shared.

    scripts/in_env.sh python benchmarks/bench_ray_grid.py    # ~10 min on 2 cores
Prints a table and writes benchmarks/results/ray_grid.json, ray_grid.md and docs/results/full_grid_estimate.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]

from grasp_experiments.experiment import ExperimentConfig, run_experiment  # noqa: E402
from grasp_experiments.pretraining import PretrainStage, prepare_data, pretrain_loss, stage_dir  # noqa: E402
from grasp_experiments.ray_backend import RayOptions, connected  # noqa: E402
from grasp_experiments.runner import read_attempts  # noqa: E402

METHODS = ("ours", "vanilla", "mog", "poi")
GRID = {"methods": 4, "objects": (2, 4, 6, 10), "seeds": 8, "steps": 1000}  # the seed's full grid
CLUSTER_CPUS = (2, 16, 32, 64, 128)


class LoadSampler:
    """The 1-minute load average every `period` s while a phase runs."""

    def __init__(self, period: float = 5.0) -> None:
        self.period, self.samples, self._stop = period, [os.getloadavg()[0]], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict:
        return {"mean": round(statistics.fmean(self.samples), 2), "min": round(min(self.samples), 2),
                "max": round(max(self.samples), 2)}


def _timed_grid(out: Path, config: ExperimentConfig, stage: Path, **kwargs) -> dict:
    (out / "pretrained").mkdir(parents=True)
    shutil.copytree(stage, out / "pretrained" / config.profile)
    with LoadSampler() as load:
        started = time.perf_counter()
        result = run_experiment(out, config, progress=True, **kwargs)
        seconds = time.perf_counter() - started
    assert not result["failed"] and len(result["ran"]) == len(config.specs()), result
    runs = {}
    for spec in config.specs():
        done = json.loads((out / spec.relative_dir / "done.json").read_text())
        runs[spec.method] = {"seconds": done["seconds"], "seconds_per_attempt": done["seconds_per_step"],
                             "successes": done["successes"]}
    return {"wall_seconds": round(seconds, 1), "load_average": load.summary(), "runs": runs}


def _same_attempts(a: Path, b: Path, config: ExperimentConfig) -> dict:
    """Per run: do the two attempts logs agree, timing fields aside (they ran with other thread counts)."""
    same = {}
    for spec in config.specs():
        logs = [[{k: v for k, v in r.items() if k not in ("seconds", "wall_time")} for r in read_attempts(d /
                 spec.relative_dir)] for d in (a, b)]
        first = next((i for i, (x, y) in enumerate(zip(*logs)) if x != y), None)
        same[spec.method] = "identical" if first is None else f"first difference at attempt {first}"
    return same


# Seconds per attempt per CPU on a quiet machine of the same kind (1 thread per run, 2 runs at a time), from the
# runs docs/results/full_grid_estimate.md was first estimated with: ours, vanilla and MoG, the 15 runs of
# docs/results/sim_fast_v7/run_more_seeds.sh (250 attempts at 10 objects; the last 6, alone on the machine:
# 0.87-0.91 s); PoI, 2 runs of 40 attempts at 10 objects (1.45-1.48 s).
QUIET_SECONDS_PER_ATTEMPT = {"ours": 0.89, "vanilla": 0.89, "mog": 0.89, "poi": 1.46}


def _grid_hours(seconds_per_attempt: dict, cpus: int) -> tuple[float, float, float]:
    """(CPU-hours, longest run in hours, wall hours on `cpus` CPUs) of the full grid at these speeds."""
    runs_per_method = len(GRID["objects"]) * GRID["seeds"]
    cpu_hours = sum(seconds_per_attempt[m] * runs_per_method * GRID["steps"] for m in METHODS) / 3600
    longest = max(seconds_per_attempt.values()) * GRID["steps"] / 3600
    return cpu_hours, longest, max(cpu_hours / cpus, longest)


def estimate_page(result: dict) -> str:
    """docs/results/full_grid_estimate.md from the benchmark's result (ray_grid.json)."""
    ray = result["ray"]
    grid = result["grid"]
    throughput = result["attempts_per_second_per_cpu"]
    measured = {m: 1.0 / throughput["per_method"][m] for m in METHODS}
    cpu_hours, longest, _ = _grid_hours(measured, 1)
    quiet_cpu_hours, quiet_longest, _ = _grid_hours(QUIET_SECONDS_PER_ATTEMPT, 1)
    quiet_average = statistics.fmean(QUIET_SECONDS_PER_ATTEMPT.values())
    rows = []
    for cpus in CLUSTER_CPUS:
        machines = "this 2-core machine" if cpus == 2 else f"{cpus // 16} x 16 cores"
        rows.append(f"| {cpus} | {machines} | {_grid_hours(measured, cpus)[2]:.1f} h | "
                    f"{_grid_hours(QUIET_SECONDS_PER_ATTEMPT, cpus)[2]:.1f} h |")
    total_runs = GRID["methods"] * len(GRID["objects"]) * GRID["seeds"]
    load = ray["load_average"]
    average = throughput["grid_average"]
    return f"""# How long the seed's full grid takes, by cluster size

Written by `benchmarks/bench_ray_grid.py` from its measurement of {result['date']}
(`benchmarks/results/ray_grid.json`); `python benchmarks/bench_ray_grid.py --estimate-only` rewrites it from that
file, a run of the script measures again.

The grid: `grasp-experiments run --methods ours vanilla mog poi --objects 2 4 6 10 --seeds 8 --steps 1000
--profile fast --ray`: {GRID['methods']} methods x {len(GRID['objects'])} object counts x {GRID['seeds']} seeds =
{total_runs} runs of {GRID['steps']} attempts. On Ray each run is a task of one CPU (`--threads 1`), so up to
{total_runs} run at once. How to start the cluster: README, "The full grid on a cluster".

## Throughput per CPU

Measured: one run's loop with 1 thread while every CPU of the machine runs one, i.e. the Ray half of the benchmark
({len(METHODS)} runs of {grid['steps']} attempts at {grid['objects']} objects, 2 at a time on a 2-core
{result['machine']['cpu']}). The machine was shared: load average {load['mean']} (min {load['min']}, max
{load['max']}) while it ran, so these are slower than a quiet machine's. For comparison, the same loop on a quiet
machine of the same kind (longer runs: 250 attempts for ours, vanilla and MoG, 40 for PoI; constants in the script):

| method | measured: s per attempt | attempts per s per CPU | quiet machine: s per attempt | attempts per s per CPU |
|---|---|---|---|---|
""" + "".join(f"| {m} | {measured[m]:.2f} | {throughput['per_method'][m]:.2f} | {QUIET_SECONDS_PER_ATTEMPT[m]:.2f} | "
              f"{1 / QUIET_SECONDS_PER_ATTEMPT[m]:.2f} |\n" for m in METHODS) + f"""
The grid's mix (every method the same number of attempts): measured **{average:.2f} attempts per second per CPU**
({1 / average:.2f} s per attempt); quiet machine {1 / quiet_average:.2f} ({quiet_average:.2f} s).

## Estimate

Wall time on N CPUs: the larger of the grid's CPU time / N and its longest run ({GRID['steps']} attempts of the
slowest method, PoI), which no number of machines shortens. CPU time: {cpu_hours:.1f} CPU-hours at the measured
speed ({longest * 60:.0f} min longest run), {quiet_cpu_hours:.1f} at the quiet machine's ({quiet_longest * 60:.0f} min).

| CPUs | e.g. | wall time, measured speed | wall time, quiet-machine speed |
|---|---|---|---|
""" + "\n".join(rows) + f"""

What these numbers leave out:
- the speeds come from runs of {grid['steps']}-250 attempts at {grid['objects']} objects; 1000-attempt runs keep a
  larger replay, and runs with 2-6 objects reset their scenes more often;
- a core faster or slower than this machine's ({result['machine']['cpu']}) scales every number;
- the pretraining stage (the key-point images, then the KL, MSE and smooth L1 Q_s, one task each) comes first; only
  `ours` waits for the KL Q_s, the other runs start at once;
- each task starts a fresh Python process (imports, MuJoCo world, the trunks' ONNX export): a few seconds per run;
- the last runs to start set the tail: on a cluster of about {total_runs} CPUs or more, the PoI runs decide the end.
"""


def _worker_pid() -> int:
    return os.getpid()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--steps", type=int, default=30, help="attempts per run")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--pretrain-images", type=int, default=8, help="key-point images of the (untimed) Q_s")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_ray_grid"), help="scratch experiment folders")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ray_grid"),
                        help="results (.json and .md)")
    parser.add_argument("--estimate", default=str(ROOT / "docs" / "results" / "full_grid_estimate.md"),
                        help="the estimate page written from the measurement")
    parser.add_argument("--estimate-only", action="store_true",
                        help="measure nothing: rewrite the estimate page from the saved result (--out .json)")
    args = parser.parse_args()
    if args.estimate_only:
        Path(args.estimate).write_text(estimate_page(json.loads(Path(args.out).with_suffix(".json").read_text())))
        print(f"wrote {args.estimate}")
        return 0
    args.date = time.strftime("%Y-%m-%d")
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    stage_config = PretrainStage("fast", num_images=args.pretrain_images, epochs=1, loss_comparison=False)
    config = ExperimentConfig(METHODS, (args.objects,), 1, args.steps, "fast", stage_config)

    print(f"pretraining the KL Q_s once (not timed), {args.pretrain_images} images", flush=True)
    prepare_data(work / "stage", stage_config, progress=False)
    pretrain_loss(work / "stage", stage_config, "kl", threads=os.cpu_count() or 1)
    stage = stage_dir(work / "stage", "fast")

    print("Ray start-up: ray.init of a local 2-CPU Ray and shutdown", flush=True)
    started = time.perf_counter()
    with connected(RayOptions(cpus=2)) as ray:
        init_seconds = time.perf_counter() - started
        ray.get(ray.remote(num_cpus=1)(_worker_pid).remote())  # a first task: one worker process started
        first_task_seconds = time.perf_counter() - started - init_seconds
        stopping = time.perf_counter()
    shutdown_seconds = time.perf_counter() - stopping

    print(f"serial: {len(METHODS)} runs x {args.steps} attempts, --jobs 1", flush=True)
    serial = _timed_grid(work / "serial", config, stage)
    print("Ray: the same runs, --ray --ray-cpus 2 (1 thread each)", flush=True)
    on_ray = _timed_grid(work / "ray", config, stage, ray_options=RayOptions(cpus=2))
    per_method = {m: round(1.0 / on_ray["runs"][m]["seconds_per_attempt"], 3) for m in METHODS}
    # the grid's mix: every method the same number of attempts, so the average time per attempt
    throughput = {"per_method": per_method,
                  "grid_average": round(1.0 / statistics.fmean(1.0 / v for v in per_method.values()), 3)}
    result = {
        "grid": {"methods": list(METHODS), "objects": args.objects, "seeds": 1, "steps": args.steps, "profile": "fast"},
        "serial": {**serial, "jobs": 1, "threads": os.cpu_count()},
        "ray": {**on_ray, "cpus": 2, "threads": 1},
        "ratio_ray_to_serial": round(on_ray["wall_seconds"] / serial["wall_seconds"], 3), "goal_ratio": 0.6,
        "ray_start_up": {"init_seconds": round(init_seconds, 1), "first_task_seconds": round(first_task_seconds, 1),
                         "shutdown_seconds": round(shutdown_seconds, 1)},
        "attempts_per_second_per_cpu": throughput,
        "attempts_logs_serial_vs_ray": _same_attempts(work / "serial", work / "ray", config),
        "machine": {"cpus": os.cpu_count(), "cpu": _cpu_name(), "python": platform.python_version()},
        "date": args.date,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    s, r = result["serial"], result["ray"]
    table = "\n".join([
        "| | wall time | load average (mean, min-max) | seconds per attempt per run (ours, vanilla, mog, poi) |",
        "|---|---|---|---|",
        *(f"| {name} | {x['wall_seconds']:.0f} s | {x['load_average']['mean']} ({x['load_average']['min']}-"
          f"{x['load_average']['max']}) | "
          + ", ".join(f"{x['runs'][m]['seconds_per_attempt']:.2f}" for m in METHODS) + " |"
          for name, x in (("serial (--jobs 1, 2 threads)", s), ("Ray (2 CPUs, 1 thread per run)", r))),
    ])
    md = f"""# Serial against a local Ray (issue 25), {args.date}

`benchmarks/bench_ray_grid.py`: {len(METHODS)} runs (ours, vanilla, MoG, PoI; {args.objects} objects, 1 seed,
{args.steps} attempts, `fast` profile) on a 2-core {_cpu_name()}.

{table}

Ray / serial wall time: **{result['ratio_ray_to_serial']:.2f}** (goal <= 0.6). Ray's start-up: ray.init
{init_seconds:.1f} s, the first task's worker {first_task_seconds:.1f} s, shutdown {shutdown_seconds:.1f} s.
Attempts per second per CPU (Ray, 1 thread per run, both CPUs busy): """ + ", ".join(
        f"{m} {per_method[m]:.2f}" for m in METHODS) + f"""; the grid's mix {throughput['grid_average']:.2f}.
Attempts logs, serial (2 threads) against Ray (1 thread): """ + ", ".join(
        f"{m} {v}" for m, v in result["attempts_logs_serial_vs_ray"].items()) + "\n"
    out.with_suffix(".md").write_text(md)
    Path(args.estimate).write_text(estimate_page(result))
    print(md)
    print(f"wrote {out.with_suffix('.json')}, {out.with_suffix('.md')} and {args.estimate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
