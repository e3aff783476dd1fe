"""angle_source "jaw_geometry": the head's score is the same at every jaw angle (its mean over the rotations), the
jaw geometry alone tells the angles apart; inference, checkpoints and the learner's cached-cell Q agree on it."""
import os
import sys

import numpy as np
import pytest
import torch

from grasp_core import checkpoint
from grasp_core.dqn import DQNConfig, DQNLearner
from grasp_core.networks import build_fcn
from grasp_core.profiles import get_profile
from grasp_core.replay import Experience, ReplayStore
from grasp_core.rotation import InferenceOptions, RotatingQNetwork

sys.path.insert(0, os.path.dirname(__file__))
from blob_world import bar_scene  # noqa: E402

torch.set_num_threads(1)
GEOMETRY_WEIGHTS = torch.tensor([0.5, -4.0, 0.3, 1.0]).view(1, 4, 1, 1)


def _network_with_geometry(weights=GEOMETRY_WEIGHTS) -> RotatingQNetwork:
    torch.manual_seed(0)
    qnet = RotatingQNetwork(build_fcn("small_cnn"), 4, 2, "upsampled", "none").eval()
    qnet.enable_jaw_geometry(0.004)
    with torch.no_grad():
        qnet.fcn.geometry_head.weight.copy_(weights)
    return qnet


def test_the_head_term_is_pooled_over_angles_and_the_geometry_term_is_kept_per_angle():
    color, depth = bar_scene()
    qnet = _network_with_geometry()
    per_rotation = qnet.predict(color, depth, InferenceOptions())
    head_only = _network_with_geometry(torch.zeros(1, 4, 1, 1)).predict(color, depth, InferenceOptions())
    geometry_term = per_rotation - head_only
    assert np.abs(head_only - head_only.mean(0)).max() > 1e-3  # the head alone does differ between angles

    qnet.set_angle_source("jaw_geometry")
    pooled = qnet.predict(color, depth, InferenceOptions())
    np.testing.assert_allclose(pooled, head_only.mean(0, keepdims=True) + geometry_term, atol=1e-5)
    one_at_a_time = qnet.predict(color, depth, InferenceOptions(chunk_size=1))  # pooled after the chunks
    np.testing.assert_allclose(one_at_a_time, pooled, atol=1e-6)
    both = qnet.predict_many([(color, depth), bar_scene(3)], InferenceOptions())
    np.testing.assert_allclose(both[0], pooled, atol=1e-6)  # a second heightmap is pooled on its own

    with torch.no_grad():
        qnet.fcn.geometry_head.weight.zero_()
    flat = qnet.predict(color, depth, InferenceOptions())
    np.testing.assert_allclose(flat, np.broadcast_to(flat[:1], flat.shape), atol=1e-6)


def test_pooling_asks_for_the_geometry_one_heightmap_and_every_rotation():
    fcn = build_fcn("small_cnn")
    with pytest.raises(ValueError, match="angle_source must be one of"):
        RotatingQNetwork(fcn, 4, 2, angle_source="trunk")
    with pytest.raises(ValueError, match="enable_jaw_geometry"):
        RotatingQNetwork(fcn, 4, 2, angle_source="jaw_geometry")
    qnet = _network_with_geometry()
    qnet.set_angle_source("jaw_geometry")
    color = torch.rand(2, 3, 32, 32)
    depth = torch.zeros(2, 1, 32, 32)
    with pytest.raises(ValueError, match="one heightmap"):
        qnet(color, depth, [0, 1])
    with pytest.raises(ValueError, match="ask for all of them"):
        qnet.q_maps(color[:1], depth[:1], rotations=[0, 2])
    assert qnet(color[:1], depth[:1], [0, 1, 2, 3]).shape == (4, 32, 32)


def test_checkpoints_keep_the_angle_source(tmp_path):
    color, depth = bar_scene(1)
    qnet = _network_with_geometry()
    qnet.set_angle_source("jaw_geometry")
    path = checkpoint.save_model(tmp_path / "pooled.safetensors", qnet.fcn, **qnet.geometry(), profile="tiny")
    loaded, record = checkpoint.load_q_network(path)
    assert record["angle_source"] == loaded.angle_source == "jaw_geometry"
    np.testing.assert_array_equal(loaded.eval().predict(color, depth, InferenceOptions()),
                                  qnet.predict(color, depth, InferenceOptions()))
    with pytest.raises(checkpoint.CheckpointError, match="angle_source"):
        checkpoint.check_model_record({**record, "angle_source": "trunks"})


def _experience(i, color, depth, rotation, pixel, reward):
    return Experience(id=f"e{i}", source="test", attempt=i, color_hm=color, depth_hm=depth, rotation_index=rotation,
                      num_rotations=4, pixel=pixel, reward=reward, terminal=True)


POOLED = dict(gamma=0.0, loss="bce", optimizer="adam", lr=1e-3, geometry_lr=0.05, bn_mode="frozen", trainable="head",
              batch_size=4, replay_sampler="uniform", jaw_geometry=True, train_opposite_rotation=True,
              angle_source="jaw_geometry")


def test_the_learner_trains_the_q_that_inference_serves(tmp_path):
    tiny = get_profile("tiny")
    torch.manual_seed(0)
    config = DQNConfig(**POOLED)
    qnet = tiny.build_q_network()
    learner = DQNLearner(qnet, config, ReplayStore(tmp_path / "replay"), profile="tiny")
    assert qnet.angle_source == "jaw_geometry"
    scenes = [bar_scene(k, tiny.heightmap_size) for k in range(3)]
    gaps = []
    for i in range(8):
        color, depth = scenes[i % 3]
        pixel = (12 + 5 * i, 20 + 3 * (i % 4))
        experience = _experience(i, color, depth, i % 4, pixel, float(i % 2))
        served = learner.q_maps(color, depth)[i % 4, pixel[1], pixel[0]]  # what the acting network chose from
        qnet.set_angle_source("network")
        unpooled = learner.q_maps(color, depth)[i % 4, pixel[1], pixel[0]]
        qnet.set_angle_source("jaw_geometry")
        stats = learner.update(experience)
        assert not stats.diverged
        # the learner's Q (bf16-cached features at the pixel's cells, head pooled) is the served one
        trained = float(np.log(stats.predicted / (1.0 - stats.predicted)))
        assert trained == pytest.approx(served, abs=5e-3)
        gaps.append(abs(unpooled - served))
    assert max(gaps) > 0.05  # so the check above tells pooled from unpooled
    assert float(qnet.fcn.geometry_head.weight.detach().abs().max()) > 0.05  # trained at its own rate
    with torch.no_grad():
        qnet.fcn.geometry_head.weight.zero_()
    head_term = learner.q_maps(*scenes[0])  # after training the head still says nothing about the angle
    np.testing.assert_allclose(head_term, np.broadcast_to(head_term[:1], head_term.shape), atol=1e-5)

    path = learner.save(tmp_path / "learner.safetensors")
    resumed, _ = checkpoint.load_q_network(path)
    DQNLearner(resumed, config, ReplayStore(tmp_path / "replay2"), profile="tiny")  # the same source: resumes
    network_config = DQNConfig(**{**POOLED, "angle_source": "network"})
    with pytest.raises(ValueError, match="dqn.angle_source=jaw_geometry"):
        DQNLearner(checkpoint.load_q_network(path)[0], network_config, ReplayStore(tmp_path / "replay3"))


def test_a_pooled_config_without_what_it_needs_is_refused():
    with pytest.raises(ValueError, match="needs jaw_geometry=true"):
        DQNConfig(**{**POOLED, "jaw_geometry": False})
    with pytest.raises(ValueError, match="bn_mode='frozen'"):
        DQNConfig(**{**POOLED, "bn_mode": "train"})
    with pytest.raises(ValueError, match="angle_source must be one of"):
        DQNConfig(**{**POOLED, "angle_source": "head"})


def test_a_model_check_of_a_few_rotations_works_on_a_pooled_network_and_still_catches_nan():
    from grasp_core.model_check import ModelCheckError, check_model

    qnet = _network_with_geometry()
    qnet.set_angle_source("jaw_geometry")
    check_model(qnet, options=InferenceOptions(), rotations=[0], probe_side=32)  # the vetting nodes' cheap check
    check_model(qnet, options=InferenceOptions(), probe_side=32)  # and the full one
    with torch.no_grad():
        qnet.fcn.head.conv1.bias.fill_(float("nan"))
    with pytest.raises(ModelCheckError, match="NaN or inf"):
        check_model(qnet, options=InferenceOptions(), rotations=[0], probe_side=32)
