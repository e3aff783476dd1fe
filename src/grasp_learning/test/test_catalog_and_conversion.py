"""The learner's checkpoint catalog (complete versions, resume point, pruning) and its message conversion."""
import uuid

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import GraspExperience  # noqa: E402

from grasp_core.dqn import DQNConfig, DQNLearner  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_learning.checkpoint_catalog import CheckpointCatalog  # noqa: E402
from grasp_learning.experience_conversion import msg_to_experience  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg  # noqa: E402

WS = VPG_SIM_WORKSPACE.with_resolution(0.007)


def saved(catalog, learner, version, trained):
    learner.save(catalog.model_path(version), version=version)
    catalog.write_progress(version, trained=trained, updates=learner.step, stored=trained + 1)


@pytest.fixture
def learner():
    torch.manual_seed(0)
    return DQNLearner(get_profile("tiny").build_q_network(), DQNConfig(replay_steps=0), profile="tiny")


def test_only_complete_versions_count_and_the_newest_is_resumed(tmp_path, learner):
    catalog = CheckpointCatalog(tmp_path)
    assert catalog.latest() is None
    saved(catalog, learner, 0, 0)
    saved(catalog, learner, 1, 10)
    learner.save(catalog.model_path(2), version=2)  # crashed before its progress file: not complete
    latest = catalog.latest()
    assert (latest.version, latest.trained, latest.stored) == (1, 10, 11)
    assert latest.model_path == catalog.model_path(1)
    catalog.progress_path(3).write_text("{}")  # progress without weights: skipped too
    assert [e.version for e in catalog.entries()] == [0, 1]


def test_prune_keeps_the_newest_versions(tmp_path, learner):
    catalog = CheckpointCatalog(tmp_path)
    for v in range(4):
        saved(catalog, learner, v, v)
    assert catalog.prune(2) == [0, 1]
    assert [e.version for e in catalog.entries()] == [2, 3]
    assert not any(p.exists() for p in catalog.files_of(0))
    assert catalog.prune(0) == []


def _msg(terminal):
    rng = np.random.default_rng(0)
    color = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    depth = rng.uniform(0, 0.05, (64, 64)).astype(np.float32)
    msg = GraspExperience(id=str(uuid.uuid4()), source="/robot2", attempt=7,
                          heightmap=heightmap_to_msg(color, depth, WS),
                          rotation_index=3, num_rotations=4, pixel_x=12, pixel_y=40, reward=1.0, terminal=terminal,
                          model_version=5, epsilon=0.25, explored=True, predicted_q=0.5, failure_reason=0)
    if not terminal:
        msg.next_heightmap = heightmap_to_msg(color, depth * 0.5, WS)
    return msg, color, depth


def test_message_becomes_an_experience_with_every_field():
    msg, color, depth = _msg(terminal=False)
    e = msg_to_experience(msg)
    assert (e.id, e.source, e.attempt, e.rotation_index, e.num_rotations) == (msg.id, "/robot2", 7, 3, 4)
    assert e.pixel == (12, 40) and e.reward == 1.0 and not e.terminal
    assert (e.model_version, e.explored) == (5, True) and e.epsilon == pytest.approx(0.25)
    np.testing.assert_array_equal(e.color_hm, color)
    np.testing.assert_array_equal(e.next_depth_hm, depth * 0.5)
    terminal = msg_to_experience(_msg(terminal=True)[0])
    assert terminal.terminal and terminal.next_color_hm is None


def test_bad_messages_are_refused_with_the_reason():
    msg, _, _ = _msg(terminal=False)
    msg.next_heightmap = GraspExperience().next_heightmap
    with pytest.raises(ValueError, match="not terminal but next_heightmap is empty"):
        msg_to_experience(msg)
    msg, _, _ = _msg(terminal=True)
    msg.pixel_x = 64
    with pytest.raises(ValueError, match="outside"):
        msg_to_experience(msg)
    msg, _, _ = _msg(terminal=True)
    msg.heightmap.depth.encoding = "16UC1"
    with pytest.raises(ValueError, match="bad heightmap"):
        msg_to_experience(msg)
    msg, _, _ = _msg(terminal=True)
    msg.id = ""
    with pytest.raises(ValueError, match="empty id"):
        msg_to_experience(msg)
