"""`grasp-experiments run / novel --ray` on a local Ray with 2 CPUs, at CI size (tiny profile, a few attempts).

The runs on Ray equal the serial runs attempt by attempt; a driver killed after the first run finished runs only
what is left when started again; a run that raises is reported by name while the others finish; without --ray,
ray is never imported.
"""
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from grasp_experiments.cli import main  # noqa: E402
from grasp_experiments import ray_backend  # noqa: E402
from grasp_experiments.ray_backend import RayOptions, connected  # noqa: E402

pytestmark = pytest.mark.slow
STEPS = 4
# The blocks world with exact depth: these tests are about Ray, and its grasps are ~3x cheaper than the meshes'.
WORLD = ["--object-library", "blocks", "--exact-depth"]
TINY = ["--objects", "2", "--seeds", "2", "--steps", str(STEPS), "--profile", "tiny", "--threads", "1",
        "--no-loss-comparison", "--quiet", *WORLD]  # without `ours`: no pretraining at all
GRID = ["run", "--methods", "ours", "vanilla", *TINY, "--pretrain-images", "4", "--pretrain-epochs", "1"]
NOVEL = ["novel", "--rounds", "2", "--attempts", "2", "--threads", "1", "--include-pretrained", "--quiet"]
TIMING_FIELDS = {"seconds", "seconds_per_step", "finished", "wall_time"}  # the only fields a second run changes


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the in-process tests; the command line uses it instead of starting its own."""
    with connected(RayOptions(cpus=2)) as ray:
        assert ray.cluster_resources()["CPU"] == 2
        yield ray


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _contents(root, relative: str):
    """A file of an experiment folder as compared: timing fields left out, the folder's own path replaced."""
    data = (root / relative).read_bytes()
    if relative.endswith(".json"):
        return _without_timing(json.loads(data.decode().replace(str(root), "<experiment>")))
    if relative.endswith(".jsonl"):
        return [_without_timing(json.loads(line)) for line in data.decode().splitlines()]
    if relative.endswith(".csv"):
        return [_without_timing(row) for row in csv.DictReader(io.StringIO(data.decode()))]
    return data


def _experiment_files(root) -> list[str]:
    """What report and novel read: all but the per-task logs and the command history."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] != "logs" and p.name != "history.jsonl")


@pytest.mark.timeout(900)
def test_ray_grid_and_novel_test_equal_the_serial_ones(tmp_path, local_ray):
    serial, on_ray = tmp_path / "serial", tmp_path / "ray"
    assert main(GRID + ["--out", str(serial)]) == 0
    assert main(NOVEL + ["--runs", str(serial)]) == 0
    assert main(GRID + ["--out", str(on_ray), "--ray"]) == 0
    assert main(NOVEL + ["--runs", str(on_ray), "--ray"]) == 0
    files = _experiment_files(serial)
    assert _experiment_files(on_ray) == files
    runs = [f for f in files if f.endswith("attempts.jsonl")]
    assert len(runs) == 4 and "novel.json" in files and "pretrained/tiny/qs_kl.safetensors" in files
    for relative in files:
        assert _contents(on_ray, relative) == _contents(serial, relative), relative
    for relative in runs:  # attempt by attempt, and each run really made its attempts
        assert [a["step"] for a in _contents(on_ray, relative)] == list(range(STEPS))
    spec = json.loads((on_ray / "runs/ours/objects_02/seed_00/spec.json").read_text())
    assert spec["pretrained"] == str(on_ray / "pretrained/tiny/qs_kl.safetensors")  # the driver's folder
    novel = json.loads((on_ray / "novel.json").read_text())
    assert list(novel["methods"]) == ["ours", "vanilla", "pretrained_qs"]  # the serial test's order
    for name in ("ours/objects_02/seed_00.log", "vanilla/objects_02/seed_01.log", "pretraining_kl.log",
                 "novel/pretrained_qs.log"):
        assert (on_ray / "logs" / name).is_file(), name
    assert json.loads((on_ray / "history.jsonl").read_text().splitlines()[-1])["ray"] == "local"


@pytest.mark.timeout(900)
def test_a_killed_driver_restarted_runs_only_what_is_left(tmp_path):
    out = tmp_path / "exp"
    command = [sys.executable, "-m", "grasp_experiments.cli", "run", "--methods", "vanilla", "mog", *TINY,
               "--ray", "--out", str(out)]
    # one run at a time, so that others are left when the first finishes; its own session, so that killing it
    # ends every process it started (its local Ray too)
    driver = subprocess.Popen(command + ["--ray-cpus", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not list(out.glob("runs/*/*/*/done.json")):
            assert driver.poll() is None, driver.stdout.read().decode()
            assert time.monotonic() < deadline, "no run finished in 600 s"
            time.sleep(0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
        driver.stdout.close()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/done.json")}
    assert len(finished) == 1  # one CPU: one run at a time, and the driver died right after the first
    restarted = subprocess.run(command + ["--ray-cpus", "2"], capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    left = 4 - len(finished)
    assert f"{len(finished)} finished run(s) skipped, {left} to run" in restarted.stdout
    assert f"{left} run(s) done, {len(finished)} skipped" in restarted.stdout
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # finished runs are never run again
    for run in sorted(out.glob("runs/*/*/*")):
        assert (run / "done.json").is_file()
        assert len((run / "attempts.jsonl").read_text().splitlines()) == STEPS


def _task_process(title: str) -> int | None:
    """The pid of the Ray worker running the task named `title` (Ray shows it as `ray::<title>`), if any."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                return int(proc.name)
        except OSError:
            continue
    return None


@pytest.mark.timeout(900)
def test_a_run_whose_worker_dies_is_tried_again(tmp_path):
    out = tmp_path / "exp"
    driver = subprocess.Popen([sys.executable, "-m", "grasp_experiments.cli", "run", "--methods", "vanilla", "mog",
                               "--objects", "2", "--seeds", "1", "--steps", "30", "--profile", "tiny", "--threads",
                               "1", "--no-loss-comparison", "--quiet", "--ray", "--ray-cpus", "2", "--ray-retries", "1",
                               *WORLD, "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while (worker := _task_process("runs/mog/objects_02/seed_00")) is None:
            assert driver.poll() is None, driver.stdout.read().decode()
            assert time.monotonic() < deadline, "the mog run never started"
            time.sleep(0.05)
        os.kill(worker, signal.SIGKILL)  # the worker dies mid-run (as on a machine that fails)
        output = driver.communicate(timeout=600)[0].decode()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=60)
    assert driver.returncode == 0, output
    assert "2 run(s) done, 0 skipped" in output
    for run in ("vanilla", "mog"):
        assert len((out / f"runs/{run}/objects_02/seed_00/attempts.jsonl").read_text().splitlines()) == 30


@pytest.mark.timeout(600)
def test_a_failing_run_is_reported_by_name_and_the_others_finish(tmp_path, local_ray, capsys):
    out = tmp_path / "exp"
    not_weights = tmp_path / "not_weights.pth"
    not_weights.write_text("not a state dict")  # only poi reads it: its runs raise, vanilla's do not
    code = main(["run", "--methods", "vanilla", "poi", *TINY, "--imagenet-weights", str(not_weights), "--ray",
                 "--ray-retries", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    for seed in (0, 1):
        name = f"runs/poi/objects_02/seed_{seed:02d}"
        assert f"FAILED {name}: ValueError: cannot read ImageNet weights" in captured.err
        assert "after 2 tries" in captured.err
        assert "cannot read ImageNet weights" in (out / f"logs/poi/objects_02/seed_{seed:02d}.log").read_text()
        assert (out / f"runs/vanilla/objects_02/seed_{seed:02d}/done.json").is_file()
    assert not (out / "runs/poi").exists()  # a failed run leaves nothing that looks finished
    assert "2 run(s) done, 0 skipped, 2 failed" in captured.out
    history = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert history["failed"] == ["runs/poi/objects_02/seed_00", "runs/poi/objects_02/seed_01"]


def test_scratch_folders_of_dead_tasks_are_removed_and_running_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / ray_backend.SCRATCH_DIR
    (root / "dead" / "runs").mkdir(parents=True)  # a task killed with its driver: its lock file is free
    (root / "dead.lock").touch()
    (root / "dead.log").touch()
    running, running_lock = ray_backend._new_scratch()
    try:
        assert sorted(p.name for p in root.iterdir()) == sorted([running.name, f"{running.name}.lock"])
        second, second_lock = ray_backend._new_scratch()  # another task leaves the running one's folder alone
        second_lock.close()
        assert running.is_dir() and second.is_dir()
    finally:
        running_lock.close()


def test_ray_flags_that_cannot_apply_are_refused(tmp_path, capsys):
    out = tmp_path / "exp"
    command = ["run", "--methods", "vanilla", *TINY, "--out", str(out)]
    for flags, says in ((["--ray", "--jobs", "2"], "leave --jobs out"),
                        (["--ray", "--ray-address", "127.0.0.1:1", "--ray-cpus", "2"], "ray start --num-cpus"),
                        (["--ray", "--ray-retries", "-1"], "--ray-retries must be >= 0"),
                        (["--ray-address", "127.0.0.1:1"], "only apply with --ray")):
        assert main(command + flags) == 2, flags
        assert says in capsys.readouterr().err, flags
    assert not out.exists()  # refused before anything is written


NO_RAY = textwrap.dedent("""
    import json, sys
    from grasp_experiments.cli import main
    out = sys.argv[1]
    assert main(["run", "--methods", "vanilla", "--objects", "2", "--seeds", "1", "--steps", "2", "--profile", "tiny",
                 "--threads", "1", "--quiet", "--object-library", "blocks", "--exact-depth", "--out", out]) == 0
    assert main(["novel", "--runs", out, "--rounds", "1", "--attempts", "1", "--threads", "1", "--quiet"]) == 0
    assert main(["novel", "--runs", out, "--ray-cpus", "2"]) == 2  # a --ray flag without --ray is refused
    print("ray modules:", json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "ray"
                                            or m.endswith("ray_backend"))))
""")


@pytest.mark.timeout(600)
def test_without_ray_flag_ray_is_never_imported(tmp_path):
    result = subprocess.run([sys.executable, "-c", NO_RAY, str(tmp_path / "exp")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ray modules: []" in result.stdout
    assert "only apply with --ray" in result.stderr
    assert (tmp_path / "exp/runs/vanilla/objects_02/seed_00/done.json").is_file()
