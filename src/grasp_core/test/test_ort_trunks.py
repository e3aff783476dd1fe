"""The onnxruntime trunk backend against the fp32 torch reference, on simulator heightmaps of the `fast` profile."""
import sys

import numpy as np
import pytest
import torch

from grasp_core import ort_trunks
from grasp_core.networks import heightmaps_to_tensors
from grasp_core.profiles import get_profile
from grasp_core.rotation import InferenceOptions, RotatingQNetwork
from grasp_core.sim import GraspWorld, world_config
from grasp_core.workspace import VPG_SIM_WORKSPACE

ORT = InferenceOptions(backend="onnxruntime")
TORCH = InferenceOptions()
SCENES = 10


@pytest.fixture(scope="module")
def heightmaps():
    profile = get_profile("fast")
    workspace = VPG_SIM_WORKSPACE.with_resolution(profile.resolution)
    scenes = []
    for seed in range(SCENES):
        # the seed's blocks world with exact depth: the scenes these agreement bounds were measured on
        with GraspWorld(world_config("blocks", exact_depth=True, robot="ur5", num_objects=8, seed=seed,
                                     workspace=workspace)) as world:
            world.reset()
            scenes.append(world.heightmap())
    return scenes


def calibrated_network(profile: str, heightmaps, num_rotations: int | None = None):
    """A randomly initialised network of `profile` (with `num_rotations` instead of its own, if given) whose
    BatchNorm statistics come from the scenes (realistic scales)."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    p = get_profile(profile)
    net = p.build_q_network() if num_rotations is None else \
        RotatingQNetwork(p.build_fcn(), num_rotations, p.zoom, p.back_rotation, p.pad, p.input_sampling)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for color_hm, depth_hm in heightmaps[:3]:
            color, depth = heightmaps_to_tensors(color_hm, depth_hm)
            net(color, depth, range(net.num_rotations))
    ort_trunks.clear_sessions()
    return net.eval()


@pytest.fixture()
def qnet(heightmaps):
    return calibrated_network("fast", heightmaps)


def argmax3(q: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(q)), q.shape))


def test_q_maps_agree_with_torch_fp32(qnet, heightmaps):
    assert_agrees_with_torch_fp32(qnet, heightmaps)


def test_mobilenet_v2_q_maps_agree_with_torch_fp32(heightmaps):
    """The PoI profile's trunks (here from random weights: the same graph as its ImageNet ones). Its 17 inverted
    residual blocks add up more float32 rounding than MobileNetV3-Small's (measured: 4.9e-4 at |Q| 4.8)."""
    assert_agrees_with_torch_fp32(calibrated_network("fast_mobilenet_v2", heightmaps), heightmaps, relative=1e-3)


def test_densenet_q_maps_agree_with_torch_fp32(heightmaps):
    """The `paper` profile's DenseNet-121 trunks with its padding and back-rotation, on 5 of the scenes at 4
    rotations (its own 224 px at 16 rotations takes ~40 s per heightmap in fp32 here)."""
    qnet = calibrated_network("paper", heightmaps, num_rotations=4)
    assert_agrees_with_torch_fp32(qnet, heightmaps[:5])


def assert_agrees_with_torch_fp32(qnet, heightmaps, relative: float = 1e-4):
    agree, worst, scale = 0, 0.0, 0.0
    for color_hm, depth_hm in heightmaps:
        reference = qnet.predict(color_hm, depth_hm, TORCH)
        q = qnet.predict(color_hm, depth_hm, ORT)
        assert q.shape == reference.shape == (qnet.num_rotations, 112, 112) and q.dtype == np.float32
        agree += argmax3(q) == argmax3(reference)
        worst = max(worst, float(np.abs(q - reference).max()))
        scale = max(scale, float(np.abs(reference).max()))
    print(f"argmax (rotation, pixel) agreement {agree}/{len(heightmaps)}, max abs error {worst:.2e} "
          f"(max |Q| {scale:.2e})")
    assert agree >= 0.99 * len(heightmaps)
    assert worst <= relative * scale


def test_chunks_and_rotation_subsets_share_one_session(qnet, heightmaps):
    """Batches of 1 to 16 rotations run on the session of one input size (dynamic batch)."""
    color, depth = heightmaps_to_tensors(*heightmaps[0])
    full = qnet.q_maps(color, depth, TORCH)
    for options, rotations in ((InferenceOptions(backend="onnxruntime", chunk_size=4), None),
                               (ORT, [3]), (ORT, [0, 5, 15])):
        q = qnet.q_maps(color, depth, options, rotations)
        expected = full if rotations is None else full[rotations]
        torch.testing.assert_close(q, expected, rtol=1e-4, atol=1e-4 * float(full.abs().max()))
    assert len(ort_trunks._sessions) == 1


def test_predict_many_equals_predict_one_at_a_time(qnet, heightmaps):
    """The affordance node's batch on the fast profile's options: chunks of 4 of 16 rotations never mix two
    heightmaps, so each one's Q maps are bitwise those of its own predict."""
    options = InferenceOptions(backend="onnxruntime", chunk_size=4)  # the fast profile's without native bf16
    batch = heightmaps[:4]
    many = qnet.predict_many(batch, options)
    for q, (color_hm, depth_hm) in zip(many, batch):
        np.testing.assert_array_equal(q, qnet.predict(color_hm, depth_hm, options))


def test_a_changed_trunk_weight_is_exported_again(qnet, heightmaps):
    color_hm, depth_hm = heightmaps[1]
    before = qnet.predict(color_hm, depth_hm, ORT)
    with torch.no_grad():  # a head change keeps the session (the head runs in torch)
        qnet.fcn.head.conv1.weight.mul_(2.0)
        qnet.fcn.head.conv1.bias.mul_(2.0)
    before = 2 * before
    np.testing.assert_allclose(qnet.predict(color_hm, depth_hm, ORT), before, rtol=1e-4, atol=1e-6)
    assert len(ort_trunks._sessions) == 1
    with torch.no_grad():
        qnet.fcn.depth_trunk[0][0].weight.mul_(0.5)  # a change within the BatchNorm statistics' range (x -2 blew
        # the activations up to ~1e3, where float32 sums in another order differ by ~1e-3 relative)
    after = qnet.predict(color_hm, depth_hm, ORT)
    reference = qnet.predict(color_hm, depth_hm, TORCH)
    assert len(ort_trunks._sessions) == 2
    assert np.abs(after - before).max() > 100 * np.abs(after - reference).max()
    np.testing.assert_allclose(after, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


def test_a_copy_with_the_same_trunks_reuses_the_session(qnet, heightmaps):
    """The harness's acting copy gets load_state_dict after every update: same trunk weights, no new export."""
    import copy
    acting = copy.deepcopy(qnet)
    qnet.predict(*heightmaps[0], ORT)
    acting.load_state_dict(qnet.state_dict())
    acting.predict(*heightmaps[0], ORT)
    assert len(ort_trunks._sessions) == 1


def test_bad_options_and_modes_are_refused(qnet, heightmaps, monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of"):
        InferenceOptions(backend="tensorrt")
    with pytest.raises(ValueError, match="bf16 and channels_last are torch options"):
        InferenceOptions(backend="onnxruntime", bf16=True)
    color, depth = heightmaps_to_tensors(*heightmaps[0])
    qnet.train()
    with pytest.raises(ValueError, match="eval mode"):
        qnet.trunk_features(color, depth, [0], backend="onnxruntime")
    qnet.eval()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if it were not installed
    with pytest.raises(RuntimeError, match="needs the onnxruntime package"):
        qnet.predict(*heightmaps[0], ORT)


def test_the_head_only_learner_caches_the_same_features_with_onnxruntime(qnet, heightmaps, tmp_path):
    from grasp_core.dqn import DQNConfig, DQNLearner
    from grasp_core.replay import Experience, ReplayStore

    color_hm, depth_hm = heightmaps[2]
    experience = Experience(id="e0", source="test", attempt=0, color_hm=color_hm, depth_hm=depth_hm,
                            rotation_index=3, num_rotations=16, pixel=(40, 50), reward=1.0, terminal=True)
    cached = {}
    for backend in ("torch", "onnxruntime"):
        config = DQNConfig(trainable="head", batch_size=1, replay_steps=0, inference=InferenceOptions(backend=backend))
        learner = DQNLearner(qnet, config, ReplayStore(tmp_path / backend))
        cached[backend] = learner._cached_features([experience, experience], [3, 11])
    torch.testing.assert_close(cached["onnxruntime"], cached["torch"], rtol=1e-2, atol=1e-3)  # bf16 storage


def test_trained_trunks_run_in_torch_not_re_exported_every_update():
    from grasp_core.dqn import DQNConfig, inference_for_training

    ort = InferenceOptions(backend="onnxruntime", chunk_size=4)
    assert DQNConfig(trainable="head", inference=ort).inference == ort  # fixed trunks: exported once
    assert DQNConfig(trainable="all", inference=ort).inference == InferenceOptions(backend="torch", chunk_size=4)
    assert inference_for_training(ort, "all").backend == "torch"
    assert inference_for_training(InferenceOptions(), "all") == InferenceOptions()
