"""affordance_node in-process (no DDS): what a bad update or a bad request gets (issue 11), and requests that
wait for the model together and run as one batch (issue 12).

- an announced checkpoint with metadata of the wrong types, NaN/inf weights, or finite weights that give NaN Q
  maps is refused and the old model keeps serving (defects 2, 3);
- a heightmap larger than max_heightmap_pixels is refused before it is decoded (defect 4);
- depth outside [0, z_max - z_min] is refused instead of becoming a pose at z = -5 or 1e30 (defect 5);
- a request that queued longer than max_queue_seconds is refused without inference (the load note);
- a batch of waiting requests gets the responses they would get one at a time, and a bad one is refused alone.
"""
import json
import threading
import time

import numpy as np
import pytest
import torch

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.msg import Heightmap, ModelVersion  # noqa: E402
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from grasp_affordance import affordance_node  # noqa: E402
from grasp_affordance.affordance_node import AffordanceNode  # noqa: E402
from grasp_core import checkpoint  # noqa: E402
from grasp_core.profiles import get_profile  # noqa: E402
from grasp_core.workspace import VPG_SIM_WORKSPACE  # noqa: E402
from grasp_ros.conversions import heightmap_to_msg  # noqa: E402
from grasp_ros.params import ParameterError  # noqa: E402

torch.set_num_threads(1)
WS = VPG_SIM_WORKSPACE.with_resolution(0.007)  # 64 x 64, the tiny profile's size


def heightmap(seed=0, workspace=WS, depth=None):
    h, w = workspace.shape
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    if depth is None:
        depth = np.zeros((h, w), np.float32)
        depth[20:30, 30:40] = 0.05
    msg = heightmap_to_msg(color, depth, workspace)
    msg.header.frame_id = "world"
    return msg


def save_tiny(path, seed=0, version=1, poison=None):
    """A tiny-profile checkpoint; `poison(fcn)` damages it first."""
    torch.manual_seed(seed)
    qnet = get_profile("tiny").build_q_network()
    if poison is not None:
        with torch.no_grad():
            poison(qnet.fcn)
    return checkpoint.save_model(path, qnet.fcn, num_rotations=4, zoom=1, back_rotation="bilinear", profile="tiny",
                                 version=version)


def edited(path, **changes):
    """Rewrite a checkpoint's header record with some fields changed (as a hand-made file would be)."""
    state, record = checkpoint.load_model(path)
    record.update(changes)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={checkpoint._HEADER_KEY: json.dumps(record)})
    return path


@pytest.fixture
def make_node(tmp_path):
    made = []

    def make(**params):
        context = rclpy.Context()
        rclpy.init(context=context)
        params = {"profile": "tiny", "warmup": False, **params}
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = AffordanceNode(context=context, parameter_overrides=overrides)
        made.append((node, context))
        return node
    yield make
    for node, context in made:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def propose(node, hm, epsilon=0.0):
    return node._on_propose(ProposeGrasp.Request(epsilon=epsilon, heightmap=hm), ProposeGrasp.Response())


def announce(node, path, version):
    node._on_model(ModelVersion(version=version, path=str(path), trunk="small_cnn", num_rotations=4))


# ------------------------------------------------------------------------------------------------ models
BAD_METADATA = [
    {"num_rotations": "sixteen"}, {"trunk": ["small_cnn"]}, {"profile": ["tiny"]}, {"zoom": "2"},
    {"version": None}, {"back_rotation": 3}, {"config": "x"}, {"num_rotations": 10 ** 9},
]


@pytest.mark.parametrize("changes", BAD_METADATA, ids=[next(iter(c)) + "=" + repr(next(iter(c.values())))[:12]
                                                       for c in BAD_METADATA])
def test_checkpoint_metadata_of_the_wrong_type_is_refused_and_the_old_model_serves(make_node, tmp_path, changes):
    node = make_node()
    good = save_tiny(tmp_path / "good.safetensors", version=1)
    announce(node, good, 1)
    assert node.model_version == 1
    bad = edited(save_tiny(tmp_path / "bad.safetensors", seed=2, version=2), **changes)
    announce(node, bad, 2)  # was: a TypeError out of the subscription callback, and the node exited
    assert node.model_version == 1
    response = propose(node, heightmap())
    assert response.success and response.model_version == 1


def _nan_weight(fcn):
    next(fcn.parameters()).view(-1)[0] = float("nan")


def _inf_weight(fcn):
    fcn.head.conv1.weight.view(-1)[0] = float("inf")


def _negative_bn_variance(fcn):  # every tensor finite, yet sqrt(running_var) is NaN at inference
    bn = next(m for m in fcn.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var.fill_(-1.0)


@pytest.mark.parametrize("poison,words", [(_nan_weight, "NaN or inf in 1 tensor"), (_inf_weight, "NaN or inf in"),
                                          (_negative_bn_variance, "NaN or inf Q values")])
def test_a_model_that_is_not_finite_is_never_swapped_in(make_node, tmp_path, poison, words, caplog):
    node = make_node()
    node._on_heightmap(heightmap(seed=3))  # the probe the check runs on
    announce(node, save_tiny(tmp_path / "good.safetensors", version=1), 1)
    assert node.model_version == 1
    announce(node, save_tiny(tmp_path / "poisoned.safetensors", seed=5, version=2, poison=poison), 2)
    assert node.model_version == 1  # refused
    response = propose(node, heightmap(seed=4))
    assert response.success and response.model_version == 1, response.message


def test_a_model_that_is_not_finite_is_refused_even_without_a_heightmap_yet(make_node, tmp_path):
    node = make_node()
    announce(node, save_tiny(tmp_path / "poisoned.safetensors", version=1, poison=_negative_bn_variance), 1)
    assert node.model_version is None
    response = propose(node, heightmap())
    assert not response.success and "no model loaded yet" in response.message


@pytest.mark.parametrize("poison", [_nan_weight, _inf_weight, _negative_bn_variance])
@pytest.mark.parametrize("with_heightmap", [True, False], ids=["latest_heightmap", "synthetic_probe"])
def test_a_model_that_is_not_finite_set_live_as_model_path_is_refused(make_node, tmp_path, poison, with_heightmap):
    """Issue 23, 2.1: `ros2 param set /affordance_node model_path <NaN model>` was swapped in (successful = true,
    "model loaded"), then every request was refused. The live path runs the same check as an announcement."""
    node = make_node()
    if with_heightmap:
        node._on_heightmap(heightmap(seed=3))
    good = save_tiny(tmp_path / "good.safetensors", version=1)
    (result,) = node.set_parameters([Parameter("model_path", value=str(good))])
    assert result.successful and node.model_version == 1, result.reason
    poisoned = save_tiny(tmp_path / "poisoned.safetensors", seed=5, version=2, poison=poison)
    (result,) = node.set_parameters([Parameter("model_path", value=str(poisoned))])
    assert not result.successful
    assert "NaN or inf" in result.reason and "the current model stays" in result.reason, result.reason
    assert node.model_version == 1 and node.config.model_path == str(good)
    assert node.get_parameter("model_path").value == str(good)
    response = propose(node, heightmap(seed=4))
    assert response.success and response.model_version == 1, response.message


def test_a_bad_model_path_parameter_leaves_the_node_up_without_a_model(make_node, tmp_path):
    bad = edited(save_tiny(tmp_path / "bad.safetensors"), num_rotations="sixteen")
    node = make_node(model_path=str(bad))
    assert node.model_version is None


# ------------------------------------------------------------------------------------------------ requests
def test_heightmaps_larger_than_the_cap_are_refused_before_decoding(make_node, tmp_path):
    node = make_node(allow_untrained=True)
    big = WS.with_resolution(0.448 / 1024)  # 1024 x 1024 with matching bounds: over the default 512 x 512
    response = propose(node, heightmap(workspace=big))
    assert not response.success and "heightmap too large" in response.message, response.message
    assert "max_heightmap_pixels" in response.message
    # The 4000 x 4000 (112 MB): refused from the sizes alone, before its bytes are looked at.
    huge = Heightmap()
    huge.header.frame_id = "world"
    huge.depth.height = huge.depth.width = huge.color.height = huge.color.width = 4000
    huge.depth.encoding, huge.color.encoding = "32FC1", "rgb8"
    huge.depth.data = b"\0" * 16  # a lie about the size: never read
    huge.resolution, huge.x_min, huge.x_max, huge.y_min, huge.y_max = 0.000112, 0.0, 0.448, 0.0, 0.448
    huge.z_min, huge.z_max = 0.0, 0.3
    response = propose(node, huge)
    assert not response.success and "heightmap too large" in response.message and "4000x4000" in response.message
    # Long and thin: few pixels, but it is rotated inside a square of its diagonal.
    from grasp_core.workspace import WorkspaceLimits
    r = 0.448 / 700
    thin = WorkspaceLimits(0.0, 0.448, 0.0, 3 * r, WS.z_min, WS.z_max, r)
    assert thin.shape == (3, 700)
    response = propose(node, heightmap(workspace=thin))
    assert response.success, response.message  # diagonal 700 < 724, the diagonal of 512 x 512
    node2 = make_node(allow_untrained=True, max_heightmap_pixels=64 * 64)
    assert propose(node2, heightmap()).success  # exactly at the cap
    response = propose(node2, heightmap(workspace=thin))  # 2100 pixels, but a diagonal of 700 > 90
    assert not response.success and "heightmap too large" in response.message and "700x3" in response.message


@pytest.mark.parametrize("value", [-5.0, 1e30, -0.001, 0.5])
def test_depth_outside_the_workspace_z_range_is_refused(make_node, value):
    node = make_node(allow_untrained=True)
    depth = np.zeros(WS.shape, np.float32)
    depth[10:20, 10:20] = value  # WS: z in [-0.0001, 0.4], so depth must be in [0, 0.4001]
    response = propose(node, heightmap(depth=depth), epsilon=1.0)
    assert not response.success and "depth must lie in [0, z_max - z_min]" in response.message, response.message
    ok = propose(node, heightmap(depth=np.full(WS.shape, 0.4001, np.float32)), epsilon=1.0)
    assert ok.success  # the very top of the range is fine
    z = ok.pose.pose.position.z
    assert WS.z_min <= z <= WS.z_max


def test_a_request_that_queued_too_long_is_not_computed(make_node):
    node = make_node(allow_untrained=True, max_queue_seconds=1e-9)  # every request has waited longer than that
    response = propose(node, heightmap())
    assert not response.success and "max_queue_seconds" in response.message
    node2 = make_node(allow_untrained=True, max_queue_seconds=0.0)  # 0 = never refuse for waiting
    assert propose(node2, heightmap()).success


def test_an_exclude_list_longer_than_the_cap_is_refused_before_any_work(make_node):
    """Issue 23, 2.3: 1,000,000 valid exclude entries were served after 24.5 s, and other clients waited behind."""
    node = make_node(allow_untrained=True)
    entries = 1_000_000
    request = ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(), exclude_radius_px=2.0,
                                   exclude_rotation_index=[1] * entries, exclude_pixel_x=[5] * entries,
                                   exclude_pixel_y=[5] * entries)
    t0 = time.perf_counter()
    response = node._on_propose(request, ProposeGrasp.Response())
    assert time.perf_counter() - t0 < 5.0
    assert not response.success, response.message
    assert "1000000 excluded grasps" in response.message and "max_excluded_grasps = 1000" in response.message
    small = make_node(allow_untrained=True, max_excluded_grasps=3)

    def excluding(n):
        return ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(), exclude_radius_px=2.0,
                                    exclude_rotation_index=[1] * n, exclude_pixel_x=[5] * n,
                                    exclude_pixel_y=list(range(n)))
    assert small._on_propose(excluding(3), ProposeGrasp.Response()).success  # at the cap
    response = small._on_propose(excluding(4), ProposeGrasp.Response())
    assert not response.success and "max_excluded_grasps = 3" in response.message, response.message
    with pytest.raises(ParameterError, match="max_excluded_grasps"):
        make_node(max_excluded_grasps=-1)


def test_a_heightmap_in_another_frame_than_the_workspace_is_refused(make_node):
    """Issue 23: a heightmap whose frame_id was not the workspace's frame was served, with the pose labelled in
    that frame (a camera frame, another robot's base): a pose the robot would misread."""
    node = make_node(allow_untrained=True)  # base_frame: world, the simulated cell's
    foreign = heightmap()
    foreign.header.frame_id = "camera_color_optical_frame"
    response = propose(node, foreign)
    assert not response.success, response.message
    assert "'camera_color_optical_frame'" in response.message and "base_frame" in response.message
    assert "'world'" in response.message
    node._on_heightmap(foreign)  # the latest heightmap on the topic is checked the same way
    response = node._on_propose(ProposeGrasp.Request(epsilon=0.0), ProposeGrasp.Response())
    assert not response.success and "'camera_color_optical_frame'" in response.message, response.message
    assert propose(node, heightmap()).pose.header.frame_id == "world"
    real = make_node(allow_untrained=True, base_frame="base_link")
    in_base_link = heightmap()
    in_base_link.header.frame_id = "base_link"
    response = propose(real, in_base_link)
    assert response.success and response.pose.header.frame_id == "base_link", response.message
    assert not propose(real, heightmap()).success
    with pytest.raises(ParameterError, match="base_frame"):
        make_node(base_frame="")


@pytest.mark.parametrize("side", [63, 111, 149])
def test_odd_sized_heightmaps_are_served(make_node, side):
    """Issue 11, defect 1: an odd x odd heightmap (111 x 111, or 149 x 149 from resolution 0.003) hung the node.
    (The tiny profile keeps this cheap; test_rotation checks the fast profile's layouts for these sizes.)"""
    node = make_node(allow_untrained=True)
    workspace = WS.with_resolution(0.448 / side)
    assert workspace.shape == (side, side)
    response = propose(node, heightmap(workspace=workspace))
    assert response.success, response.message
    assert 0 <= response.center_px[0] < side and 0 <= response.center_px[1] < side


# ------------------------------------------------------------------------------------------------ batches
def mixed_requests():
    """Greedy and exploring requests (three modes), exclusions, the object mask, two heightmap sizes."""
    small = WS.with_resolution(0.448 / 48)  # 48 x 48
    return [ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(seed=1)),
            ProposeGrasp.Request(epsilon=1.0, heightmap=heightmap(seed=2)),
            ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(seed=3), exclude_rotation_index=[0, 1, 2, 3],
                                 exclude_pixel_x=[35, 35, 35, 35], exclude_pixel_y=[25, 25, 25, 25],
                                 exclude_radius_px=4.0, action_space="custom", object_mask=True,
                                 object_min_height=0.01, symmetric_q=True),
            ProposeGrasp.Request(epsilon=1.0, exploration_mode="boltzmann", temperature=0.2,
                                 heightmap=heightmap(seed=4, workspace=small)),
            ProposeGrasp.Request(epsilon=1.0, exploration_mode="affordance", heightmap=heightmap(seed=1)),
            ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(seed=5, workspace=small))]


def summary(response):
    p, o = response.pose.pose.position, response.pose.pose.orientation
    return (response.success, response.message, response.rotation_index, tuple(response.center_px),
            response.q_value, response.explored, response.angle, (p.x, p.y, p.z), (o.x, o.y, o.z, o.w),
            response.model_version)


def propose_together(node, requests):
    """Call the node from one thread per request while the model is busy, so the requests queue up in this order
    and run as batches when it is free; the responses in request order."""
    responses = [None] * len(requests)

    def call(i):
        responses[i] = node._on_propose(requests[i], ProposeGrasp.Response())
    threads = []
    with node._model_lock:
        for i in range(len(requests)):
            threads.append(threading.Thread(target=call, args=(i,)))
            threads[-1].start()
            deadline = time.monotonic() + 30.0
            while len(node._waiting) < i + 1:  # queued before the next one starts: a fixed arrival order
                assert time.monotonic() < deadline, "a request never reached the queue"
                time.sleep(0.005)
    for thread in threads:
        thread.join(timeout=120.0)
    assert not any(thread.is_alive() for thread in threads)
    return responses


@pytest.fixture
def batch_sizes(monkeypatch):
    sizes = []

    def recording(model, requests, rng):
        sizes.append(len(requests))
        return propose_many(model, requests, rng)
    propose_many = affordance_node.propose_many
    monkeypatch.setattr(affordance_node, "propose_many", recording)
    return sizes


def test_waiting_requests_run_as_batches_and_get_the_responses_they_would_alone(make_node, batch_sizes):
    requests = mixed_requests()
    alone = make_node(allow_untrained=True, max_batch=1)  # same seed: same weights, same random stream
    expected = [summary(alone._on_propose(r, ProposeGrasp.Response())) for r in requests]
    assert batch_sizes == [1] * len(requests)
    assert all(e[0] for e in expected), expected
    assert any(e[5] for e in expected) and not all(e[5] for e in expected)  # greedy and explored ones
    batch_sizes.clear()
    batched = make_node(allow_untrained=True, max_batch=4)
    responses = propose_together(batched, requests)
    assert batch_sizes == [4, 2]  # oldest first, at most max_batch
    assert [summary(r) for r in responses] == expected
    batch_sizes.clear()
    one_at_a_time = make_node(allow_untrained=True, max_batch=1)
    assert [summary(r) for r in propose_together(one_at_a_time, requests)] == expected
    assert batch_sizes == [1] * len(requests)


def test_a_bad_request_in_a_batch_is_refused_alone(make_node, batch_sizes):
    requests = mixed_requests()[:3]
    bad = ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(seed=6), exclude_rotation_index=[9],
                               exclude_pixel_x=[1], exclude_pixel_y=[1])
    node = make_node(allow_untrained=True, max_batch=4)
    responses = propose_together(node, [requests[0], bad, *requests[1:]])
    assert batch_sizes == [3]  # the bad one never reaches the network
    assert not responses[1].success and "exclude_rotation_index 9" in responses[1].message
    assert all(r.success for r in responses[:1] + responses[2:])
    late = make_node(allow_untrained=True, max_batch=4, max_queue_seconds=1e-9)
    assert not any(r.success for r in propose_together(late, requests))
    assert all("max_queue_seconds" in r.message for r in propose_together(late, requests))


def test_a_batch_whose_network_fails_answers_every_request_and_the_node_keeps_serving(make_node, monkeypatch):
    node = make_node(allow_untrained=True, max_batch=4)
    serve = affordance_node.propose_many

    def broken(model, requests, rng):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(affordance_node, "propose_many", broken)
    responses = propose_together(node, mixed_requests()[:3])
    assert all(not r.success and "internal error" in r.message and "out of memory" in r.message for r in responses)
    monkeypatch.setattr(affordance_node, "propose_many", serve)
    assert propose(node, heightmap()).success and not node._waiting


def run_to_the_end(coroutine, timeout: float = 60.0):
    """Drive a service coroutine as rclpy's executor does (resume it until it returns); its return value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            coroutine.send(None)
        except StopIteration as done:
            return done.value
        assert time.monotonic() < deadline, "the request was never answered"
        time.sleep(0.005)


def test_requests_beyond_max_waiting_requests_are_refused_at_once(make_node):
    """Issue 23, 2.2: the service takes every request at once (a coroutine: the executor thread is not held), so
    none is lost unseen in DDS's queue; beyond max_waiting_requests in flight it answers "busy, retry" at once."""
    node = make_node(allow_untrained=True, max_waiting_requests=2, max_batch=1)
    requests = [ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap(seed=i)) for i in range(3)]
    with node._model_lock:  # the model is busy: the first two wait for it
        admitted = [node._serve_propose(r, ProposeGrasp.Response()) for r in requests[:2]]
        for coroutine in admitted:
            coroutine.send(None)  # taken and handed to a worker thread; the coroutine yields until it is done
        deadline = time.monotonic() + 30.0
        while len(node._waiting) < 2:
            assert time.monotonic() < deadline, "the admitted requests never reached the queue"
            time.sleep(0.005)
        t0 = time.perf_counter()
        busy = run_to_the_end(node._serve_propose(requests[2], ProposeGrasp.Response()))
        assert time.perf_counter() - t0 < 5.0  # at once, while the model is still busy
    assert not busy.success and "busy" in busy.message and "retry" in busy.message, busy.message
    assert "max_waiting_requests = 2" in busy.message
    assert all(run_to_the_end(coroutine).success for coroutine in admitted)
    assert run_to_the_end(node._serve_propose(requests[2], ProposeGrasp.Response())).success  # room again
    with pytest.raises(ParameterError, match="max_waiting_requests"):
        make_node(max_waiting_requests=0)


def test_max_batch_must_be_at_least_one(make_node):
    with pytest.raises(ParameterError, match="max_batch"):
        make_node(max_batch=0)
