"""An experiment: methods x object counts x seeds learning runs in one folder, run in parallel and resumable.

`<experiment>/experiment.json` records the settings the folder was made with; running again with other
settings for runs that already exist is refused (a finished run's result must mean what its folder says).
With --jobs > 1 each run is a separate process (spawned: a fresh MuJoCo GL context and torch thread pool each);
a finished run (done.json) is skipped, an interrupted one restarts from scratch.
With a RayOptions (`--ray`) the same tasks run as Ray tasks instead, on this machine or a cluster
(grasp_experiments.ray_backend, imported only then).
"""
from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from grasp_experiments.methods import get_method
from grasp_experiments.pretraining import PretrainStage, loss_done, prepare_data, pretrain_loss, stage_dir
from grasp_experiments.runner import DONE_FILE, RunSpec, is_finished, run_learning

EXPERIMENT_FILE = "experiment.json"


@dataclass(frozen=True)
class ExperimentConfig:
    methods: tuple[str, ...]
    objects: tuple[int, ...]
    seeds: int
    steps: int
    profile: str
    pretrain: PretrainStage = field(default=None)  # type: ignore[assignment]
    imagenet_weights: str | None = None
    keep_replay: bool = False
    learning: str = "default"  # grasp_core.learning preset of every run
    overrides: tuple[str, ...] = ()  # "section.field=value" on top of it
    checkpoint_every: int = 0  # > 0: each run also keeps its Q network every this many attempts
    object_library: str = "random_objects"  # the simulated world of every run and of the key-point images
    exact_depth: bool = False  # its camera without the D435-like depth noise

    def __post_init__(self) -> None:
        if not self.methods or not self.objects:
            raise ValueError("give at least one method and one object count")
        for m in self.methods:
            get_method(m)
        if len(set(self.methods)) != len(self.methods) or len(set(self.objects)) != len(self.objects):
            raise ValueError(f"methods and object counts must not repeat: {self.methods}, {self.objects}")
        if self.seeds < 1:
            raise ValueError(f"need at least one seed, got {self.seeds}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0 (0: only the final model), got {self.checkpoint_every}")
        if self.pretrain is None:
            object.__setattr__(self, "pretrain", PretrainStage(self.profile, object_library=self.object_library,
                                                               exact_depth=self.exact_depth))
        if (self.pretrain.object_library, self.pretrain.exact_depth) != (self.object_library, self.exact_depth):
            raise ValueError(f"pretraining world ({self.pretrain.object_library}, exact depth "
                             f"{self.pretrain.exact_depth}) differs from the runs' ({self.object_library}, "
                             f"exact depth {self.exact_depth})")
        if self.pretrain.profile != self.profile:
            raise ValueError(f"pretraining profile {self.pretrain.profile} differs from {self.profile}")

    def specs(self) -> list[RunSpec]:
        """Every run, seed by seed: an experiment cut short still has its first seeds in every cell."""
        return [RunSpec(m, n, s, self.steps, self.profile, learning=self.learning, overrides=tuple(self.overrides),
                        object_library=self.object_library, exact_depth=self.exact_depth)
                for s in range(self.seeds) for n in self.objects for m in self.methods]

    def record(self) -> dict:
        d = asdict(self)
        d["methods"], d["objects"], d["overrides"] = list(self.methods), list(self.objects), list(self.overrides)
        return d


def _check_existing_runs(out: Path, config: ExperimentConfig) -> None:
    for spec in config.specs():
        done = out / spec.relative_dir / DONE_FILE
        if done.is_file():
            recorded = json.loads(done.read_text())["spec"]
            if recorded != json.loads(json.dumps(asdict(spec))):
                raise ValueError(f"{done.parent} holds a finished run with other settings ({recorded}); "
                                 "use another --out folder")


def _exit_with_parent(parent: int) -> None:
    """A worker whose experiment process died (killed, not just interrupted) stops too, instead of racing a
    restarted experiment for the same run directory."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            os._exit(3)


def _run_task(out: str, task, pretrained: str | None, config: ExperimentConfig, threads: int,
              parent: int | None = None) -> dict:
    """One unit of work in a worker process: a learning run (RunSpec) or one pretraining loss (str)."""
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if isinstance(task, str):
        return pretrain_loss(out, config.pretrain, task, threads)
    return run_learning(task, Path(out) / task.relative_dir, pretrained if get_method(task.method).pretrained
                        else None, config.imagenet_weights, threads, config.keep_replay,
                        checkpoint_every=config.checkpoint_every)


class _InlineExecutor:
    """submit() runs the task at once in this process (jobs = 1: no start-up cost per run)."""

    def __init__(self, *args, **kwargs):
        pass

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))  # an exception propagates at once, as it would from result()
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def task_name(task) -> str:
    """How a task is named in progress lines, failure reports and logs."""
    return f"pretraining ({task})" if isinstance(task, str) else str(task.relative_dir)


def task_ready(out: Path, config: ExperimentConfig, task) -> bool:
    """Runs that warm-start from Q_s (`ours`) wait for the KL pretraining; everything else can start."""
    return isinstance(task, str) or not get_method(task.method).pretrained or loss_done(out, config.profile, "kl")


def _describe(task, result: dict) -> str:
    if isinstance(task, str):
        return f"pretraining ({task}): loss {result['epoch_losses'][0]:.4f} -> {result['epoch_losses'][-1]:.4f}, " \
               f"{result['seconds']:.0f} s"
    return f"{task.relative_dir}: {result['successes']}/{result['steps']} grasps, {result['seconds']:.0f} s " \
           f"({result['seconds_per_step']:.2f} s/step)"


def run_experiment(out: str | Path, config: ExperimentConfig, jobs: int = 1, threads: int | None = None,
                   progress: bool = True, log=print, ray_options=None) -> dict:
    """Run every unfinished piece of the experiment.

    Returns {"ran": learning runs done now, "skipped": runs finished before, "pretrained": losses trained now,
    "failed": {task name: error} (on Ray; locally a failed task stops the experiment), "seconds": wall time}.

    Order: the KL pretraining first (the `ours` runs wait for it), then the MSE and smooth L1 pretraining of the
    loss comparison, then the learning runs; up to `jobs` at a time, each in its own process, or with
    `ray_options` (a grasp_experiments.ray_backend.RayOptions) as Ray tasks of `threads` CPUs each (default 1).
    """
    from tqdm import tqdm

    out = Path(out)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if ray_options is not None and jobs != 1:
        raise ValueError("--jobs sizes the local process pool; with --ray the cluster's CPUs set how many runs go "
                         "at once (--threads CPUs each): leave --jobs out")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or (1 if ray_options is not None else max(1, (os.cpu_count() or 1) // jobs))
    _check_existing_runs(out, config)
    (out / EXPERIMENT_FILE).write_text(json.dumps(config.record(), indent=1) + "\n")
    started = time.perf_counter()
    specs = config.specs()
    todo = [s for s in specs if not is_finished(out / s.relative_dir)]
    skipped = [str(s.relative_dir) for s in specs if s not in todo]
    if skipped:
        log(f"grasp-experiments: {len(skipped)} finished run(s) skipped, {len(todo)} to run")
    needs_kl = any(get_method(s.method).pretrained for s in todo)
    losses = [loss for loss in config.pretrain.losses if loss != "kl" or needs_kl or config.pretrain.loss_comparison]
    for loss in losses:  # refuses Q_s trained before with other settings
        if loss_done(out, config.profile, loss):
            pretrain_loss(out, config.pretrain, loss)
    losses = [loss for loss in losses if not loss_done(out, config.profile, loss)]
    if losses:
        prepare_data(out, config.pretrain, progress=progress)
    kl_path = stage_dir(out, config.profile) / "qs_kl.safetensors"
    pending: list = losses + todo  # kl first; the comparison losses are short and needed for the report
    if ray_options is not None:
        from grasp_experiments.ray_backend import run_tasks_on_ray

        result = run_tasks_on_ray(out, config, pending, threads, ray_options, progress=progress, log=log)
        return {**result, "skipped": skipped, "seconds": round(time.perf_counter() - started, 1)}

    def ready(task) -> bool:
        return task_ready(out, config, task)

    ran, pretrained = [], []
    executor = _InlineExecutor() if jobs == 1 else \
        ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), max_tasks_per_child=1)
    with executor as pool, tqdm(total=len(pending), desc="tasks", unit="task", disable=None if progress else True,
                                dynamic_ncols=True) as bar:
        running: dict[Future, object] = {}
        while pending or running:
            while len(running) < jobs and (task := next((t for t in pending if ready(t)), None)) is not None:
                pending.remove(task)
                running[pool.submit(_run_task, str(out), task, str(kl_path), config, threads,
                                    None if jobs == 1 else os.getpid())] = task
            if not running:
                raise RuntimeError(f"tasks {pending} can never start (the KL pretraining did not finish)")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                result = future.result()  # a failed task raises here and stops the experiment
                (pretrained if isinstance(task, str) else ran).append(str(task) if isinstance(task, str)
                                                                     else str(task.relative_dir))
                bar.update(1)
                bar.write(_describe(task, result))
    return {"ran": ran, "skipped": skipped, "pretrained": pretrained, "failed": {},
            "seconds": round(time.perf_counter() - started, 1)}
