"""`make demo`'s runner (grasp_bringup.demo), CI-sized: tiny profile, a 4-image dataset, 1 pretraining epoch.

One run to its attempt limit (dataset, pretraining, graph, curve, summary), one stopped with Ctrl-C (SIGINT) that
must stop every node process and still write the results.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_bringup import demo  # noqa: E402
from grasp_core.attempts import AttemptRecord, read_attempts  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
TINY = ["--profile", "tiny", "--dataset-images", "4", "--pretrain-epochs", "1", "--objects", "4", "--window", "5",
        "--set", "publish_every=3"]


def graph_processes(out: Path) -> list[int]:
    """PIDs of node processes the demo started with logs in `out` (ProcessGraph marks their environment)."""
    marker = f"GRASP_GRAPH_LOG_DIR={out / 'logs'}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def demo_viewer_ports_free(port: int) -> bool:
    from grasp_bringup.viewer import port_is_free

    return port_is_free(port) and port_is_free(port + 1)


def run_demo(out: Path, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "grasp_bringup.demo", *TINY, "--output", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(1500)  # two demo runs; generous for a machine shared with other jobs
def test_demo_runs_to_its_attempt_limit_then_stops_on_ctrl_c(tmp_path):
    out = tmp_path / "demo"
    port = free_port()
    while not demo_viewer_ports_free(port):
        port = free_port()
    proc = run_demo(out, ["--attempts", "8", "--viz", "--viz-port", str(port)])
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attempts"] >= 8 and summary["stopped_because"] == "reached 8 attempts"
    assert summary["warm_start"] and (out / "pretrained" / "q_s.safetensors").is_file()
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert "attempts" in output and "G(last" in output and "model v" in output  # the live line
    assert f"viewer: open http://127.0.0.1:{port}/?url=rerun%2Bhttp://127.0.0.1:{port + 1}/proxy" in output
    viewer_log = (out / "logs" / "viewer.log").read_text()
    assert summary.get("viewer_ready_s") is not None and "viewer ready" in viewer_log, (  # test_viewer opens the page
        f"viewer log: {viewer_log!r}\ndemo output:\n{output[-3000:]}")
    rows = (out / "attempts.csv").read_text().splitlines()
    assert len(rows) == summary["attempts"] + 1
    assert graph_processes(out) == []
    # The run's ROS 2 bag: every experience the monitor saw, the proposals (service events) and model versions.
    from grasp_ros.bag import read_bag
    topics = [topic for topic, _, _, _ in read_bag(out / "bag")]
    # (The demo stops the graph once it has seen the last attempt: the recorder may not have written that one.)
    assert topics.count("/grasp/experience") >= summary["attempts"] - 1
    assert topics.count("/propose_grasp/_service_event") >= 2 * (summary["attempts"] - 1)  # request + response
    assert "/grasp/model" in topics

    # Second run: the dataset and pretrained Q_s are reused; Ctrl-C during learning stops everything.
    proc = run_demo(out, ["--attempts", "100000"])
    seen = []
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if line.startswith("attempts ") and int(line.split()[1].split("/")[0]) >= 3:
            break
    text = "".join(seen)
    assert "reusing" in text and "pretrained Q_s: reusing" in text, text[-2000:]
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest[-2000:]
    assert "interrupted" in rest
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attempts"] >= 3 and summary["stopped_because"] == "interrupted (Ctrl-C)"
    assert graph_processes(out) == []


def attempt(step: int, reward: int, epsilon: float) -> AttemptRecord:
    return AttemptRecord(step=step, success=reward, reward=float(reward), explored=False, epsilon=epsilon, rotation=0,
                         u=0, v=0, angle=0.0, predicted_q=0.5, target=None, loss=None, grad_norm=None, replayed=None,
                         diverged=None, failure_reason=0 if reward else 1, grasped_object="", objects_remaining=-1,
                         scene_reset=False, reset_why="", excluded=None, on_object=None, keypoint_mm=None,
                         model_version=0, roi_pixels=None, seconds=None, source="/robot1")


def test_results_are_computed_from_the_attempts(tmp_path):
    args = demo.parse_args(["--window", "4", "--objects", "3"])
    progress = demo.Progress()
    outcomes = [0, 0, 0, 1, 0, 1, 1, 1, 1, 1]
    for i, r in enumerate(outcomes):
        progress.rewards.append(r)
        progress.rows.append(attempt(i, r, 0.5 - 0.04 * i))
    progress.versions = [(0, 0), (5, 1), (9, 2)]
    summary = demo.write_results(tmp_path, args, progress, {"stopped_because": "test"}, {"pretrain_seconds": 1.0})
    assert summary["attempts"] == 10 and summary["successes"] == 6
    assert summary["G_first_window"] == 0.25 and summary["G_last_window"] == 1.0
    assert summary["final_model_version"] == 2 and summary["pretrain_seconds"] == 1.0
    assert (tmp_path / "learning_curve.png").is_file()
    assert len((tmp_path / "attempts.csv").read_text().splitlines()) == 11
    assert [a["reward"] for a in read_attempts(tmp_path)] == outcomes  # the shared log: jsonl beside the csv


def test_graph_has_one_learner_and_affordance_and_a_trio_per_robot(tmp_path):
    args = demo.parse_args(["--robots", "2", "--attempts", "40", "--profile", "tiny"])
    specs = demo.graph_specs(args, tmp_path, tmp_path / "q_s.safetensors")
    with_viewer = demo.graph_specs(demo.parse_args(["--viz", "--viz-port", "9500", "--no-bag"]), tmp_path, None)
    viewer = next(s for s in with_viewer if s.executable == "viewer")
    assert (viewer.params["web_port"], viewer.params["grpc_port"]) == (9500, 9501)
    assert viewer.params["namespace"] == "/robot1"
    assert not any(s.executable == "bag_recorder" for s in with_viewer)
    labels = sorted(s.label for s in specs)
    assert labels == sorted(["learner_node", "affordance_node", "bag_recorder", "robot1_sim_node",
                             "robot1_heightmap_node",
                             "robot1_executor_node", "robot2_sim_node", "robot2_heightmap_node",
                             "robot2_executor_node"])
    executor = next(s for s in specs if s.label == "robot2_executor_node")
    assert executor.params["propose_service"] == "/propose_grasp"
    assert next(s for s in specs if s.label == "robot1_heightmap_node").params["resolution"] == 0.007
    learner = next(s for s in specs if s.label == "learner_node")
    assert learner.params["pretrained_checkpoint"].endswith("q_s.safetensors")
    with pytest.raises(SystemExit):
        demo.parse_args(["--attempts", "0"])
