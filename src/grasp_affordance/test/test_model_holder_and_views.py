"""The affordance node's ROS-free core (model loading, grasp choice) and its RViz views, without DDS."""
import dataclasses
import math

import numpy as np
import pytest
import torch

pytest.importorskip("rclpy", reason="the views build ROS messages (make test sets the environment up)")
from grasp_affordance.model_holder import load_checkpoint_model, propose, untrained_model  # noqa: E402
from grasp_affordance.visualization import (affordance_colors, affordance_image, grasp_markers,  # noqa: E402
                                            heightmap_points, point_cloud)
from grasp_core import checkpoint  # noqa: E402
from grasp_core.checkpoint import CheckpointError  # noqa: E402
from grasp_core.grasp_pose import top_down_quaternion  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

WS = VPG_SIM_WORKSPACE.with_resolution(0.007)  # 64 x 64


def heightmaps(seed=0):
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    depth = np.zeros((64, 64), np.float32)
    depth[20:30, 40:50] = 0.04
    return color, depth


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(1)
    qnet = get_profile("tiny").build_q_network()
    return checkpoint.save_model(tmp_path / "m.safetensors", qnet.fcn, num_rotations=4, zoom=1,
                                 back_rotation="bilinear", profile="tiny", version=7)


def test_checkpoint_model_takes_its_network_from_the_metadata(tiny_checkpoint):
    model = load_checkpoint_model(tiny_checkpoint)
    assert (model.version, model.num_rotations, model.trunk, model.profile) == (7, 4, "small_cnn", "tiny")
    assert model.resolution == pytest.approx(0.007)
    assert load_checkpoint_model(tiny_checkpoint, version=9).version == 9  # the announcement's number wins


def test_corrupt_checkpoint_raises_a_value_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage" * 20)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint_model(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint_model(tmp_path / "missing.safetensors")


def test_greedy_proposal_is_the_q_argmax_as_a_base_frame_pose(tiny_checkpoint):
    model = load_checkpoint_model(tiny_checkpoint)
    color, depth = heightmaps()
    proposal = propose(model, color, depth, WS, 0.0, np.random.default_rng(0))
    q = model.network.predict(color, depth, model.options)
    rotation, v, u = np.unravel_index(int(np.argmax(q)), q.shape)
    assert (proposal.rotation_index, proposal.u, proposal.v) == (rotation, u, v)
    assert proposal.q_value == pytest.approx(float(q.max()), abs=1e-5)
    assert proposal.best_rotation == rotation and not proposal.explored
    assert proposal.angle == pytest.approx(rotation * math.pi / 2)
    assert proposal.position == pytest.approx(tuple(WS.pixel_to_point(u, v, float(depth[v, u]))))
    assert proposal.orientation == pytest.approx(top_down_quaternion(proposal.angle))


def test_epsilon_explores_and_is_checked():
    model = untrained_model("tiny", seed=0)
    color, depth = heightmaps()
    rng = np.random.default_rng(3)
    picks = {(p.rotation_index, p.u, p.v) for p in (propose(model, color, depth, WS, 1.0, rng) for _ in range(6))}
    assert len(picks) > 1
    with pytest.raises(ValueError, match="epsilon"):
        propose(model, color, depth, WS, float("nan"), rng)


def test_affordance_image_blends_jet_over_the_heightmap():
    color = np.zeros((16, 16, 3), np.uint8)
    q = np.tile(np.linspace(0, 1, 16, dtype=np.float32), (16, 1))
    image = affordance_image(color, q)
    jet = affordance_colors(q)
    assert image.shape == (16, 16, 3)
    assert np.abs(image.astype(int) - jet.astype(int) // 2).max() <= 1  # 50/50 over black
    assert jet[0, 0, 2] > jet[0, 0, 0] and jet[0, -1, 0] > jet[0, -1, 2]  # blue = low, red = high
    with pytest.raises(ValueError, match="differ in size"):
        affordance_image(color, q[:8])


def test_point_cloud_packs_xyz_and_rgb():
    depth = np.zeros((64, 64), np.float32)
    depth[5, 7] = 0.03
    points = heightmap_points(depth, WS)
    colors = np.zeros((64 * 64, 3), np.uint8)
    colors[5 * 64 + 7] = (10, 20, 30)
    cloud = point_cloud(points, colors, Header(frame_id="world"))
    data = np.frombuffer(bytes(cloud.data), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    p = data[5 * 64 + 7]
    assert (p["x"], p["y"], p["z"]) == pytest.approx(tuple(WS.pixel_to_point(7, 5, 0.03)), abs=1e-6)
    assert p["rgb"] == (10 << 16) | (20 << 8) | 30
    assert cloud.point_step == 16 and cloud.width == 64 * 64 and cloud.header.frame_id == "world"


def test_markers_put_the_fingers_across_the_closing_direction():
    markers = grasp_markers(Header(frame_id="world"), (0.1, 0.2, 0.05), math.pi / 2, 0.08, 0.7, "v3").markers
    fingers = [m for m in markers if m.type == m.CUBE]
    arrow = next(m for m in markers if m.type == m.ARROW)
    ys = sorted(f.pose.position.y for f in fingers)
    assert [f.pose.position.x for f in fingers] == pytest.approx([0.1, 0.1])  # closing along +y at 90 deg
    assert ys == pytest.approx([0.2 - 0.045, 0.2 + 0.045])
    assert (arrow.points[1].x, arrow.points[1].y, arrow.points[1].z) == pytest.approx((0.1, 0.2, 0.05))
    assert "Q=0.70" in next(m for m in markers if m.type == m.TEXT_VIEW_FACING).text


def test_a_request_with_the_object_mask_proposes_inside_the_footprint(tiny_checkpoint):
    from grasp_core.action_space import ActionSpaceConfig

    model = load_checkpoint_model(tiny_checkpoint)
    color, depth = heightmaps()
    actions = ActionSpaceConfig(object_mask=True, min_height_m=0.01, edge_margin_m=0.014, symmetric_q=True)
    for epsilon in (0.0, 1.0):
        proposal = propose(model, color, depth, WS, epsilon, np.random.default_rng(3), actions=actions)
        assert 21 <= proposal.v <= 28 and 41 <= proposal.u <= 48  # >= 2 px (14 mm) inside the 10 x 10 px box
        q = proposal.q_maps
        assert proposal.q_value == pytest.approx(0.5 * (q[proposal.rotation_index, proposal.v, proposal.u]
                                                        + q[(proposal.rotation_index + 2) % 4, proposal.v,
                                                            proposal.u]))


def test_a_learner_that_trains_the_trunks_is_served_by_torch(tmp_path):
    """Its trunks change with every version: the node must not re-export them to ONNX for each one."""
    from grasp_core.dqn import DQNConfig, DQNLearner

    fast = get_profile("fast")  # onnxruntime trunks on CPUs without native bf16
    for trainable in ("all", "head"):
        config = DQNConfig(trainable=trainable, inference=fast.inference, batch_size=1, replay_steps=0)
        learner = DQNLearner(fast.build_q_network(), config, profile="fast")
        options = load_checkpoint_model(learner.save(tmp_path / f"{trainable}.safetensors", version=1)).options
        assert options == (fast.inference if trainable == "head" else
                           dataclasses.replace(fast.inference, backend="torch"))
