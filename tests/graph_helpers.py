"""Shared pieces of the cross-process tests: heightmap messages, a test-side ROS node spun in a thread, and a
ProcessGraph wrapper that waits for nodes to come up.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor

from grasp_bringup.process_graph import NodeSpec, ProcessGraph
from grasp_core.workspace import VPG_SIM_WORKSPACE
from grasp_ros.conversions import heightmap_to_msg

REPO = Path(__file__).resolve().parents[1]
TINY_WORKSPACE = VPG_SIM_WORKSPACE.with_resolution(0.007)  # the tiny profile's 64 x 64 heightmap


def blob_heightmaps(workspace=TINY_WORKSPACE, seed: int = 0, blobs: int = 3):
    """A few box-shaped objects on an empty table: colour uint8 (H, W, 3), depth float32 (H, W)."""
    rng = np.random.default_rng(seed)
    h, w = workspace.shape
    color = np.full((h, w, 3), 40, np.uint8)
    depth = np.zeros((h, w), np.float32)
    for _ in range(blobs):
        u, v = rng.integers(8, w - 8), rng.integers(8, h - 8)
        r = int(rng.integers(2, 5))
        depth[v - r:v + r, u - r:u + r] = rng.uniform(0.02, 0.05)
        color[v - r:v + r, u - r:u + r] = rng.integers(60, 255, size=3)
    return color, depth


def box_scene(seed: int, workspace=TINY_WORKSPACE, frame: str = "world", sec: int = 100):
    """Four boxes, 10-18 px wide, on an empty table: colour, depth and the Heightmap message."""
    rng = np.random.default_rng(seed)
    h, w = workspace.shape
    color = np.full((h, w, 3), 40, np.uint8)
    depth = np.zeros((h, w), np.float32)
    for _ in range(4):
        u, v = rng.integers(10, w - 10), rng.integers(10, h - 10)
        r = int(rng.integers(5, 9))
        depth[v - r:v + r, u - r:u + r] = rng.uniform(0.02, 0.05)
        color[v - r:v + r, u - r:u + r] = rng.integers(60, 255, size=3)
    msg = heightmap_to_msg(color, depth, workspace)
    msg.header.frame_id = frame
    msg.header.stamp.sec = sec
    msg.color.header = msg.depth.header = msg.header
    return color, depth, msg


def train_default_preset_model(directory: Path, updates: int = 6, version: int = 6) -> Path:
    """A tiny network trained for a few updates by the `default` learning preset's learner on box scenes, saved
    as the learner saves it (with the preset's action space): a stand-in for a demo's learned model."""
    import torch

    from grasp_core.dqn import DQNLearner
    from grasp_core.learning import learning_config
    from grasp_core.profiles import get_profile
    from grasp_core.replay import Experience, ReplayStore

    directory = Path(directory)
    tiny = get_profile("tiny")
    config = learning_config("default", seed=0, inference=tiny.inference)
    torch.manual_seed(0)
    learner = DQNLearner(tiny.build_q_network(), config.dqn, ReplayStore(directory / "replay"), profile="tiny",
                         actions=config.actions)
    for i in range(updates):
        color, depth, _ = box_scene(100 + i)
        on_object = np.argwhere(depth > 0.01)
        v, u = on_object[i * 7 % len(on_object)]
        learner.update(Experience(id=f"e{i}", source="test", attempt=i, color_hm=color, depth_hm=depth,
                                  rotation_index=i % 4, num_rotations=4, pixel=(int(u), int(v)),
                                  reward=float(i % 2), terminal=True))
    path = learner.save(directory / "default_preset.safetensors", version=version)
    learner.replay.close()
    return path


def heightmap_msg(seed: int = 0, frame: str = "world", sec: int = 100, workspace=TINY_WORKSPACE):
    color, depth = blob_heightmaps(workspace, seed)
    msg = heightmap_to_msg(color, depth, workspace)
    msg.header.frame_id = frame
    msg.header.stamp.sec = sec
    msg.color.header = msg.depth.header = msg.header
    return msg


class RosClient:
    """An rclpy node of the test process, spun by a background thread (so futures and callbacks progress)."""

    def __init__(self, name: str = "test_client"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                if not self.context.ok():
                    return
                raise

    def call(self, client, request, timeout: float = 30.0):
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                client.remove_pending_request(future)
                raise TimeoutError(f"no response from {client.srv_name} within {timeout} s")
            time.sleep(0.005)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def graph_in_test_domain(log_dir, **kwargs) -> ProcessGraph:
    """A ProcessGraph in this test run's DDS domain (conftest.py picks it), so the test process sees the nodes."""
    return ProcessGraph(log_dir, domain_id=int(os.environ["ROS_DOMAIN_ID"]), **kwargs)


def start_and_wait(graph: ProcessGraph, spec: NodeSpec, ready_text: str, timeout: float = 180.0):
    node = graph.start(spec)
    if not graph.wait_for_log(spec.label, ready_text, timeout):
        raise RuntimeError(f"{spec.label} did not come up within {timeout} s:\n{node.log_tail(40)}")
    return node


def log_text(graph: ProcessGraph, label: str) -> str:
    return graph.node(label).log_path.read_text(errors="replace")
