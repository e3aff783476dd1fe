"""`grasp-experiments run / novel --ray`: every learning run, pretraining loss and novel-object test is one Ray task,
on this machine or on a cluster, with no shared disk. Imported only under --ray: without it `ray` is never imported.

What travels (nothing assumes a shared disk):
- to a task: its RunSpec itself (so whatever field a RunSpec has reaches the worker), the ExperimentConfig, and the
  files it reads from the experiment folder (the KL Q_s for `ours`, the key-point data for a pretraining loss, the
  finished models for the novel-object test, an --imagenet-weights file), each set put in Ray's object store once;
- back: every file the task wrote, as bytes in its return value. The task runs in an empty temporary experiment
  folder on its worker; paths to that folder in the JSON files it wrote are replaced by the driver's folder. The
  driver writes the files into the experiment folder, the done marker (done.json, loss_<loss>.json) last, so the
  folder is what a serial run leaves and `report` / `novel` read it unchanged.

The same science: a task runs the serial runner's own code (`experiment._run_task`, `novel.run_novel_test`) in a
fresh process (max_calls=1, as the local pool's max_tasks_per_child=1), with `threads` torch threads and as many CPUs
reserved (Ray also sets OMP_NUM_THREADS to it). With the serial run's --threads, a run's attempts log equals the
serial one attempt by attempt (only the timing fields `seconds` and `wall_time` differ); with another thread count,
floating-point sums may differ in their last bits, and a near tie between two grasps can then go the other way.

Resuming and failures: a run is finished iff its done.json is in the driver's folder (the local runner's rule, and
its refusal of changed settings: `experiment._check_existing_runs`). A killed driver takes its in-flight tasks with
it (Ray ends a job's tasks with its driver) and loses only them. A task that raises or whose worker dies is tried
again up to `retries` times, then reported by name while the other runs go on; `ours` runs whose KL pretraining
failed are reported as not started.

Progress: one tqdm bar over the grid's attempts (rate and ETA), with runs done, in flight and failed; tasks report
their attempt counts to a small actor. A task's stdout and stderr go to `<experiment>/logs/<task>.log`, not to the
driver's console. Ray's dashboard is off unless asked for (`dashboard`; it needs `ray[default]`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # workers render headless; set before anything imports mujoco

from grasp_experiments import experiment  # noqa: E402
from grasp_experiments.methods import get_method  # noqa: E402
from grasp_experiments.pretraining import DATA_FILE, loss_marker, stage_dir  # noqa: E402
from grasp_experiments.runner import DONE_FILE, RunSpec  # noqa: E402

# "0": a local Ray uses 127.0.0.1 for all its processes (Ray's single-machine mode), reachable from nowhere else.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOG_DIR = "logs"  # <experiment>/logs/<task>.log: each Ray task's stdout and stderr
# A task's temporary experiment folders on its worker: <temp>/grasp-ray/<name>/, held by a lock on <name>.lock
SCRATCH_DIR = "grasp-ray"
IMAGENET_INPUT = "inputs/imagenet"  # where a task finds the --imagenet-weights file in its temporary folder
JSON_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class RayOptions:
    """Where and how the tasks run."""

    address: str | None = None  # a cluster's address (`ray start --head` prints it); None: a local Ray
    cpus: int | None = None  # CPUs of a local Ray (default: all of this machine's)
    retries: int = 2  # tries after the first, for a task that raises or whose worker dies
    dashboard: bool = False  # a local Ray's dashboard (needs ray[default])

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"--ray-retries must be >= 0, got {self.retries}")
        if self.cpus is not None and self.cpus < 1:
            raise ValueError(f"--ray-cpus must be >= 1, got {self.cpus}")
        if self.address and (self.cpus is not None or self.dashboard):
            raise ValueError("--ray-cpus and --ray-dashboard set up a local Ray; a cluster's nodes set theirs with "
                             "`ray start --num-cpus N` and `ray start --head --include-dashboard true`")


@contextlib.contextmanager
def connected(options: RayOptions):
    """Ray, started locally or joined (options.address); a Ray the caller already started is used as it is."""
    if not options.address:
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")  # read when ray is first imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray sends no usage reports from this driver's Ray
    try:
        import ray
    except ImportError as e:
        raise ValueError(f"--ray needs the ray package ({e}): pip install -r requirements.txt") from e
    if ray.is_initialized():
        yield ray
        return
    if options.address:
        ray.init(address=options.address, log_to_driver=False, logging_level="WARNING")
    else:  # "local": a new Ray even where a `ray start` cluster runs on this machine
        try:
            ray.init(address="local", num_cpus=options.cpus or os.cpu_count() or 1,
                     include_dashboard=options.dashboard, log_to_driver=False, logging_level="WARNING")
        except Exception as e:  # Ray raises a bare Exception for the dashboard's missing packages
            ray.shutdown()
            if options.dashboard and "missing packages" in str(e):
                raise ValueError("--ray-dashboard needs Ray's dashboard packages: pip install 'ray[default]==2.60.0' "
                                 "(or leave --ray-dashboard out)") from e
            raise
    try:
        yield ray
    finally:
        ray.shutdown()


class AttemptCounts:
    """A Ray actor: the attempts each running task has logged so far (tasks report, the progress bar reads)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def report(self, name: str, attempts: int) -> None:
        self._counts[name] = attempts

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


# --- on the worker -----------------------------------------------------------------------------------------------

def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _with_driver_paths(files: dict[str, bytes], scratch: Path, driver_out: str) -> dict[str, bytes]:
    """JSON files name the driver's experiment folder where they name the worker's temporary one (spec.json's
    `pretrained`), as a serial run in the driver's folder would have written them."""
    old, new = json.dumps(str(scratch))[1:-1].encode(), json.dumps(driver_out)[1:-1].encode()
    return {k: v.replace(old, new) if k.endswith(JSON_SUFFIXES) else v for k, v in files.items()}


@contextlib.contextmanager
def _output_to(path: Path):
    """This process's stdout and stderr (file descriptors 1 and 2, so C libraries' output too) into `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _report_attempts(counter, name: str, log_file: Path):
    """Every second, the number of lines of a run's attempts.jsonl to the AttemptCounts actor; returns stop()."""
    stop = threading.Event()

    def loop() -> None:
        position, lines, reported = 0, 0, -1
        while not stop.wait(1.0):
            if log_file.is_file():
                with open(log_file, "rb") as f:
                    f.seek(position)
                    chunk = f.read()
                position += len(chunk)
                lines += chunk.count(b"\n")
            if lines != reported:
                counter.report.remote(name, lines)
                reported = lines

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join()
    return finish


def run_in_scratch(kind: str, task, settings, threads: int, files: dict[str, bytes], driver_out: str,
                   counter=None) -> dict:
    """A Ray task: one piece of work in an empty temporary experiment folder holding `files`.

    kind "grid": `task` is a RunSpec or a pretraining loss, `settings` the ExperimentConfig; returns
    {"result": the task's record, "files": what it wrote, "log": its output}.
    kind "novel": `task` is a method (or novel.PRETRAINED_KEY), `settings` the novel test's keyword arguments;
    returns {"result": that entry of novel.json, "settings": the test's settings, "files": {}, "log": ...}.
    """
    scratch, lock = _new_scratch()
    log_path = scratch.with_name(scratch.name + ".log")
    try:
        _write_tree(scratch, files)
        with _output_to(log_path):
            if kind == "grid":
                reply = _grid_task(scratch, task, settings, threads, counter)
            elif kind == "novel":
                reply = _novel_task(scratch, task, settings, threads)
            else:
                raise ValueError(f"unknown task kind {kind!r}")
        written = {k: v for k, v in _read_tree(scratch).items() if k not in files}
        reply["files"] = _with_driver_paths(written, scratch, driver_out) if kind == "grid" else {}
        reply["log"] = log_path.read_text(errors="replace")
        return reply
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        log_path.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".lock").unlink(missing_ok=True)
        lock.close()


def _new_scratch():
    """An empty folder for one task, and the open lock file that marks it in use until this process ends. Folders
    of tasks whose worker died (a killed driver ends its tasks with SIGKILL: no clean-up of their own) are removed
    here: their locks are free."""
    root = Path(tempfile.gettempdir()) / SCRATCH_DIR
    root.mkdir(exist_ok=True)
    for lock_path in root.glob("*.lock"):
        with open(lock_path, "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a running task's
            name = lock_path.name[:-len(".lock")]
            shutil.rmtree(root / name, ignore_errors=True)
            (root / f"{name}.log").unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root))
    locking = root / f".{scratch.name}.locking"
    lock = open(locking, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.replace(locking, root / f"{scratch.name}.lock")  # appears already locked
    return scratch, lock


def _grid_task(scratch: Path, task, config, threads: int, counter) -> dict:
    if config.imagenet_weights:
        config = dataclasses.replace(config, imagenet_weights=str(scratch / IMAGENET_INPUT /
                                                                  Path(config.imagenet_weights).name))
    stop = None
    if counter is not None and isinstance(task, RunSpec):
        stop = _report_attempts(counter, experiment.task_name(task), scratch / task.relative_dir / "attempts.jsonl")
    try:
        result = experiment._run_task(str(scratch), task, str(stage_dir(scratch, config.profile) / "qs_kl.safetensors"),
                                      config, threads)
    finally:
        if stop is not None:
            stop()
    return {"result": result}


def _novel_task(scratch: Path, entry: str, settings: dict, threads: int) -> dict:
    from grasp_experiments.novel import PRETRAINED_KEY, run_novel_test

    pretrained = entry == PRETRAINED_KEY
    record = run_novel_test(scratch, [] if pretrained else [entry], threads=threads, progress=False,
                            include_pretrained=pretrained, **settings)
    return {"result": record["methods"][entry], "settings": {k: v for k, v in record.items() if k != "methods"}}


# --- on the driver -----------------------------------------------------------------------------------------------

def _files_under(out: Path, paths) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.update({f"{path.relative_to(out).as_posix()}/{k}": v for k, v in _read_tree(path).items()})
        elif path.is_file():
            files[path.relative_to(out).as_posix()] = path.read_bytes()
        else:
            raise FileNotFoundError(f"{path} is missing: it is an input of a Ray task")
    return files


class _Inputs:
    """The files each kind of grid task reads, put in Ray's object store once (workers fetch them from there)."""

    def __init__(self, ray, out: Path, config) -> None:
        self.ray, self.out, self.config = ray, out, config
        self._refs: dict[tuple[str, bool], object] = {}

    def _files(self, kind: str) -> dict[str, bytes]:
        stage = stage_dir(self.out, self.config.profile)
        if kind == "pretraining":
            return _files_under(self.out, [stage / DATA_FILE, stage / "dataset", stage / "heldout"])
        if kind == "kl":
            return _files_under(self.out, sorted(stage.glob("qs_kl.*")))
        return {}

    def for_task(self, task):
        if isinstance(task, str):
            kind, imagenet = "pretraining", False
        else:
            method = get_method(task.method)
            kind, imagenet = ("kl" if method.pretrained else "none"), method.imagenet
        imagenet = imagenet and bool(self.config.imagenet_weights)
        if (kind, imagenet) not in self._refs:
            files = self._files(kind)
            if imagenet:
                source = Path(self.config.imagenet_weights)
                if not source.is_file():
                    raise FileNotFoundError(f"--imagenet-weights {source} is not a file")
                files[f"{IMAGENET_INPUT}/{source.name}"] = source.read_bytes()
            self._refs[kind, imagenet] = self.ray.put(files)
        return self._refs[kind, imagenet]


def _marker(out: Path, config, task) -> Path:
    if isinstance(task, str):
        return loss_marker(out, config.profile, task)
    return out / task.relative_dir / DONE_FILE


def _write_outputs(out: Path, marker: Path, files: dict[str, bytes], replace: Path | None = None) -> None:
    """A task's files into the experiment folder, `marker` (the done file) last and atomically; `replace`: a run
    folder emptied first (what an interrupted local attempt left there)."""
    root = out.resolve()
    relative_marker = marker.relative_to(out).as_posix()
    if relative_marker not in files:
        raise ValueError(f"the task returned no {relative_marker}: it did not finish")
    for relative in files:
        if not (root / relative).resolve().is_relative_to(root):
            raise ValueError(f"a task returned a file outside the experiment folder: {relative}")
    if replace is not None and replace.exists():
        shutil.rmtree(replace)
    _write_tree(out, {k: v for k, v in files.items() if k != relative_marker})
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_bytes(files[relative_marker])
    os.replace(tmp, marker)


def _log_path(out: Path, task) -> Path:
    if isinstance(task, RunSpec):
        return out / LOG_DIR / Path(*task.relative_dir.parts[1:]).with_suffix(".log")
    return out / LOG_DIR / f"pretraining_{task}.log"


def _write_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _error(e: Exception) -> str:
    """One line for a failed task: the task's own exception where Ray kept it."""
    cause = getattr(e, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def _capacity(ray, threads: int) -> int:
    """Tasks that can run at once: the cluster's CPUs (nodes may join while the grid runs) over `threads`."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < threads:
        raise ValueError(f"the Ray cluster has {cpus} CPUs, fewer than --threads {threads} that each task reserves")
    return cpus // threads


def _remote(ray, threads: int, retries: int):
    return ray.remote(num_cpus=threads, max_calls=1, max_retries=retries, retry_exceptions=True)(run_in_scratch)


def run_tasks_on_ray(out: Path, config, tasks: list, threads: int, options: RayOptions, progress: bool = True,
                     log=print) -> dict:
    """Run the grid's unfinished `tasks` (pretraining losses and RunSpecs, as experiment.run_experiment lists them)
    as Ray tasks; returns {"ran": runs done, "pretrained": losses done, "failed": {task name: error}}."""
    from tqdm import tqdm

    out = Path(out)
    runs = [t for t in tasks if isinstance(t, RunSpec)]
    ran, pretrained, errors = [], [], {}
    failed_runs = 0
    with connected(options) as ray:
        remote = _remote(ray, threads, options.retries)
        counter = ray.remote(num_cpus=0)(AttemptCounts).remote()
        inputs = _Inputs(ray, out, config)
        pending, running = list(tasks), {}
        finished_attempts = 0
        with tqdm(total=sum(r.steps for r in runs), desc="grid", unit="attempt", dynamic_ncols=True,
                  disable=None if progress else True) as bar:
            def show() -> None:
                try:
                    counts = ray.get(counter.counts.remote(), timeout=10)
                except ray.exceptions.GetTimeoutError:
                    counts = {}
                live = sum(counts.get(experiment.task_name(t), 0) for t in running.values() if isinstance(t, RunSpec))
                bar.update(max(0, finished_attempts + live - bar.n))
                in_flight = sum(isinstance(t, RunSpec) for t in running.values())
                losses = [t for t in running.values() if isinstance(t, str)]
                bar.set_postfix_str(f"runs done {len(ran)}, in flight {in_flight}, failed {failed_runs}"
                                    + (f", pretraining {' '.join(losses)}" if losses else ""))

            def fail(task, error: str) -> None:
                nonlocal failed_runs
                errors[experiment.task_name(task)] = error
                if isinstance(task, RunSpec):
                    failed_runs += 1
                    bar.total -= task.steps
                bar.write(f"FAILED {experiment.task_name(task)}: {error}")

            while pending or running:
                capacity = _capacity(ray, threads)
                while len(running) < capacity and \
                        (task := next((t for t in pending if experiment.task_ready(out, config, t)), None)) is not None:
                    pending.remove(task)
                    name = experiment.task_name(task)
                    running[remote.options(name=name).remote("grid", task, config, threads, inputs.for_task(task),
                                                             str(out), counter)] = task
                if not running:  # what is left waits for a KL pretraining that failed
                    for task in pending:
                        fail(task, "not started: it warm-starts from the KL pretraining, which failed")
                    break
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    task = running.pop(ref)
                    name = experiment.task_name(task)
                    try:
                        reply = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        _write_log(_log_path(out, task), f"{name} failed after {options.retries + 1} tries:\n{e}\n")
                        fail(task, f"{_error(e)} (after {options.retries + 1} tries; log: {_log_path(out, task)})")
                        continue
                    _write_outputs(out, _marker(out, config, task), reply["files"],
                                   replace=out / task.relative_dir if isinstance(task, RunSpec) else None)
                    _write_log(_log_path(out, task), reply["log"])
                    if isinstance(task, RunSpec):
                        ran.append(name)
                        finished_attempts += task.steps
                    else:
                        pretrained.append(name)
                    bar.write(experiment._describe(task, reply["result"]))
                show()
    return {"ran": ran, "pretrained": pretrained, "failed": errors}


def run_novel_on_ray(experiment_dir: str | Path, methods: list[str], objects: int, rounds: int, attempts: int,
                     threads: int, options: RayOptions, include_pretrained: bool = False,
                     progress: bool = True) -> tuple[dict, dict]:
    """The novel-object test (novel.run_novel_test), one Ray task per method; returns (novel.json's record,
    {entry: error} of the failed ones). The entries that succeeded are saved even when others failed."""
    from tqdm import tqdm

    from grasp_experiments.novel import PRETRAINED_KEY, save_novel_results, trained_models
    from grasp_experiments.pretraining import kl_checkpoint

    out = Path(experiment_dir)
    if rounds < 1 or attempts < 1:
        raise ValueError(f"need rounds >= 1 and attempts >= 1, got {rounds}, {attempts}")
    profile = json.loads((out / experiment.EXPERIMENT_FILE).read_text())["profile"]

    def run_files(method: str, models: bool) -> list[Path]:
        found = trained_models(out, method, objects)
        return [f for m in found for f in [m.parent / DONE_FILE, m.parent / "spec.json"]
                + (sorted(m.parent.glob("model.*")) if models else [])]

    entries: dict[str, list[Path]] = {}
    for method in methods:
        if not trained_models(out, method, objects):
            raise ValueError(f"no finished {method} runs with {objects} objects in {out}")
        entries[method] = run_files(method, True)
    if include_pretrained:  # the Q_s and the learning settings of ours' runs (novel.run_learning_config)
        kl = kl_checkpoint(out, profile)
        entries[PRETRAINED_KEY] = sorted(kl.parent.glob("qs_kl.*")) + [loss_marker(out, profile, "kl")] \
            + run_files("ours", False)
    settings = {"objects": objects, "rounds": rounds, "attempts": attempts}
    results, errors, header = {}, {}, None
    with connected(options) as ray, tqdm(total=len(entries), desc="novel", unit="method",
                                         disable=None if progress else True) as bar:
        remote = _remote(ray, threads, options.retries)
        experiment_file = _files_under(out, [out / experiment.EXPERIMENT_FILE])
        running = {remote.options(name=f"novel {entry}").remote(
            "novel", entry, settings, threads, ray.put({**experiment_file, **_files_under(out, paths)}), str(out)):
            entry for entry, paths in entries.items()}
        while running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                entry = running.pop(ref)
                log_path = out / LOG_DIR / "novel" / f"{entry}.log"
                try:
                    reply = ray.get(ref)
                except ray.exceptions.RayError as e:
                    _write_log(log_path, f"novel {entry} failed after {options.retries + 1} tries:\n{e}\n")
                    errors[entry] = f"{_error(e)} (after {options.retries + 1} tries; log: {log_path})"
                    bar.write(f"FAILED novel {entry}: {errors[entry]}")
                    continue
                _write_log(log_path, reply["log"])
                results[entry], header = reply["result"], reply["settings"]
                bar.update(1)
            bar.set_postfix_str(f"in flight {len(running)}, failed {len(errors)}")
    results = {entry: results[entry] for entry in entries if entry in results}  # the serial test's order
    record = save_novel_results(out, header, results) if results else {"methods": {}}
    return record, errors
