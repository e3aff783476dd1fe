"""Jaw-geometry features: the maps say what the jaw meets, the head adds them without changing the warm start,
checkpoints keep them, and the learner trains their weights."""
import os
import sys

import numpy as np
import pytest
import torch

from grasp_core import checkpoint
from grasp_core.dqn import DQNConfig, DQNLearner
from grasp_core.jaw_geometry import CHANNELS, JawGeometry, JawGeometryMaps
from grasp_core.networks import build_fcn
from grasp_core.profiles import get_profile
from grasp_core.replay import Experience, ReplayStore
from grasp_core.rotation import InferenceOptions, RotatingQNetwork

sys.path.insert(0, os.path.dirname(__file__))
from blob_world import bar_scene  # noqa: E402

torch.set_num_threads(1)
PIXEL_M = 0.002
SIDE = 96  # 19 cm at 2 mm
STRIDE = 16  # the centre cell is pixels 48-63


def _maps(depth: np.ndarray) -> dict[str, float]:
    """Each channel at the centre cell of a (SIDE, SIDE) depth image."""
    maps = JawGeometryMaps(JawGeometry(pixel_m=PIXEL_M), STRIDE)(torch.from_numpy(depth)[None, None].float())
    centre = SIDE // STRIDE // 2
    return {name: float(maps[0, i, centre, centre]) for i, name in enumerate(CHANNELS)}


def _block(depth, u0, u1, v0, v1, height):
    depth[v0:v1, u0:u1] = height


def test_a_bar_across_the_jaw_fills_little_of_its_span_and_one_along_it_fills_most():
    across = np.zeros((SIDE, SIDE), np.float32)
    _block(across, 48, 64, 0, SIDE, 0.03)  # 32 mm wide along u (the closing axis), all along v
    along = across.T.copy()
    m_across, m_along = _maps(across), _maps(along)
    assert m_across["span_u"] < 0.4 < m_across["span_v"]
    assert m_along["span_u"] > 0.6 > m_along["span_v"]
    assert m_along["span_u"] == pytest.approx(m_across["span_v"]) and m_along["span_v"] == pytest.approx(
        m_across["span_u"])


def test_a_tall_neighbour_under_one_finger_shows_up_on_that_axis_only():
    depth = np.zeros((SIDE, SIDE), np.float32)
    _block(depth, 50, 62, 50, 62, 0.03)  # the object, 24 mm
    clear = _maps(depth)
    _block(depth, 80, 92, 46, 66, 0.05)  # a 5 cm block where the right finger lands (61 mm from the centre)
    blocked = _maps(depth)
    assert clear["finger_u"] == pytest.approx(0.0) and clear["finger_v"] == pytest.approx(0.0)
    assert blocked["finger_u"] > 0.3  # a fraction of the cell sees the full 1.0 (5 cm / height_scale)
    assert blocked["finger_v"] == pytest.approx(0.0)


def test_bad_geometry_and_inputs_are_refused():
    with pytest.raises(ValueError, match="pixel_m"):
        JawGeometry(pixel_m=0.0)
    with pytest.raises(ValueError, match="max_opening_m"):
        JawGeometry(pixel_m=0.002, max_opening_m=float("nan"))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        JawGeometryMaps(JawGeometry(pixel_m=0.002), 4)(torch.zeros(1, 3, 8, 8))


def test_the_geometry_head_starts_at_zero_and_checkpoints_keep_it(tmp_path):
    torch.manual_seed(0)
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 4, 2, "upsampled", "none").eval()
    color, depth = bar_scene()
    before = qnet.predict(color, depth, InferenceOptions())
    qnet.enable_jaw_geometry(0.004)
    assert qnet.fcn.feature_channels == 2 * 64 + len(CHANNELS)
    np.testing.assert_allclose(qnet.predict(color, depth, InferenceOptions()), before, atol=1e-6)
    with pytest.raises(ValueError, match="already scores jaw geometry"):
        qnet.enable_jaw_geometry(0.004)
    with torch.no_grad():
        qnet.fcn.geometry_head.weight.copy_(torch.tensor([0.0, -4.0, 0.0, 1.0]).view(1, 4, 1, 1))
    changed = qnet.predict(color, depth, InferenceOptions())
    assert np.abs(changed - before).max() > 0.01

    path = checkpoint.save_model(tmp_path / "geo.safetensors", qnet.fcn, **qnet.geometry(), profile="tiny")
    loaded, record = checkpoint.load_q_network(path)
    assert record["jaw_geometry"] == JawGeometry(pixel_m=0.002, downsample=2).to_record()
    np.testing.assert_array_equal(loaded.eval().predict(color, depth, InferenceOptions()), changed)

    plain = build_fcn("small_cnn")
    with pytest.raises(checkpoint.CheckpointError, match="geometry_head"):
        checkpoint.load_weights_into(plain, path)
    tensors, record = checkpoint.load_model(path)
    with pytest.raises(checkpoint.CheckpointError, match="jaw_geometry"):
        checkpoint.check_model_record({**record, "jaw_geometry": {"pixel_m": -1}})


def _experience(i, color, depth, rotation, pixel, reward):
    return Experience(id=f"e{i}", source="test", attempt=i, color_hm=color, depth_hm=depth, rotation_index=rotation,
                      num_rotations=4, pixel=pixel, reward=reward, terminal=True)


def test_the_learner_adds_the_geometry_head_and_trains_it_at_its_own_rate(tmp_path):
    torch.manual_seed(0)
    tiny = get_profile("tiny")
    config = DQNConfig(gamma=0.0, loss="bce", optimizer="adam", lr=1e-3, geometry_lr=0.05, bn_mode="frozen",
                       trainable="head", batch_size=4, replay_sampler="uniform", jaw_geometry=True)
    qnet = tiny.build_q_network()
    learner = DQNLearner(qnet, config, ReplayStore(tmp_path / "replay"), profile="tiny")
    assert qnet.fcn.jaw_geometry is not None and qnet.fcn.jaw_geometry.geometry.pixel_m == tiny.resolution
    assert [g["lr"] for g in learner.optimizer.param_groups] == [1e-3, 0.05]
    color, depth = bar_scene(1, tiny.heightmap_size)
    for i in range(6):
        learner.update(_experience(i, color, depth, i % 4, (20 + i, 30), float(i % 2)))
    assert float(qnet.fcn.geometry_head.weight.detach().abs().max()) > 0.05  # moved by ~geometry_lr per step

    path = learner.save(tmp_path / "learner.safetensors")
    resumed_net, record = checkpoint.load_q_network(path)
    assert record["jaw_geometry"] is not None
    DQNLearner(resumed_net, config, ReplayStore(tmp_path / "replay2"), profile="tiny")  # keeps the one it has
    with pytest.raises(ValueError, match="jaw_geometry=true"):
        DQNLearner(checkpoint.load_q_network(path)[0], DQNConfig(), ReplayStore(tmp_path / "replay3"))
    with pytest.raises(ValueError, match="heightmap resolution"):
        DQNLearner(tiny.build_q_network(), config, ReplayStore(tmp_path / "replay4"))
