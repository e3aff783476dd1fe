"""`/propose_grasp` serves the policy its model was trained for (issue 23): the affordance node, in-process, with a
tiny model trained by the `default` preset's learner, answers a plain request exactly as it answers the executor's
request; the request's `action_space` field changes the choice only when asked, and refuses what it cannot read.
The DDS version of this, from a user's client against the simulated cell, is tests/outside/test_plain_request.py.
"""
import os
import sys

import pytest
import torch

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_interfaces.srv import ProposeGrasp  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from grasp_affordance.affordance_node import AffordanceNode  # noqa: E402
from grasp_core import checkpoint  # noqa: E402
from grasp_core.learning import PRESETS, learning_config  # noqa: E402
from grasp_execution.executor_node import propose_request  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from graph_helpers import box_scene, train_default_preset_model  # noqa: E402

torch.set_num_threads(1)


def scene(seed: int):
    return box_scene(seed)


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    """A tiny network trained for a few updates by the `default` preset's learner, saved as the learner saves."""
    return train_default_preset_model(tmp_path_factory.mktemp("default_model"))


@pytest.fixture
def make_node():
    made = []

    def make(**params):
        context = rclpy.Context()
        rclpy.init(context=context)
        overrides = [Parameter(k, value=v) for k, v in {"profile": "tiny", "warmup": False, **params}.items()]
        node = AffordanceNode(context=context, parameter_overrides=overrides)
        made.append((node, context))
        return node
    yield make
    for node, context in made:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def ask(node, request):
    return node._on_propose(request, ProposeGrasp.Response())


def grasp(response):
    assert response.success, response.message
    return tuple(response.center_px), response.rotation_index, round(response.q_value, 6)


def test_a_plain_request_gets_the_grasp_the_executor_gets(make_node, default_model):
    """Issue 23: a plain request (epsilon 0, nothing else) chose anywhere by each rotation's own Q, the seed's
    action space, and a default-preset model's grasps there missed. Now it gets the model's own action space:
    the executor's grasp on every heightmap."""
    node = make_node(model_path=str(default_model))
    executor_learning = learning_config("default")  # what executor_node holds with its default parameters
    differs_from_seed = 0
    for seed in range(6):
        _, depth, msg = scene(seed)
        plain = ask(node, ProposeGrasp.Request(heightmap=msg))
        executors = ask(node, propose_request(executor_learning, 0.0, msg))
        assert grasp(plain) == grasp(executors), f"scene {seed}"
        u, v = (int(c) for c in plain.center_px)
        assert depth[v, u] > 0.01  # on an object
        differs_from_seed += grasp(ask(node, ProposeGrasp.Request(heightmap=msg, action_space="seed"))) != \
            grasp(plain)
    assert differs_from_seed >= 1  # the seed's action space chooses otherwise here: the test tells them apart


def test_the_model_is_served_with_the_action_space_its_checkpoint_records(make_node, default_model, tmp_path,
                                                                          capfd):
    node = make_node(model_path=str(default_model))
    assert node._model.actions == PRESETS["default"].actions
    assert node._model.actions_source == checkpoint.ACTION_SPACE_RECORDED
    # A checkpoint that records a different one is served with that one.
    anywhere = tmp_path / "anywhere.safetensors"
    network, _ = checkpoint.load_q_network(default_model)
    checkpoint.save_model(anywhere, network.fcn, **network.geometry(), profile="tiny", version=7,
                          action_space=PRESETS["seed"].actions)
    other = make_node(model_path=str(anywhere))
    for seed in range(3):
        msg = scene(seed)[2]
        assert grasp(ask(other, ProposeGrasp.Request(heightmap=msg))) == \
            grasp(ask(node, ProposeGrasp.Request(heightmap=msg, action_space="seed")))
    # One that records none (an older file) is served with a default the log names.
    old = tmp_path / "old.safetensors"
    checkpoint.save_model(old, network.fcn, **network.geometry(), profile="tiny", version=8)
    capfd.readouterr()
    make_node(model_path=str(old))
    err = capfd.readouterr().err
    assert "records no action space" in err and "'default' preset" in err and "jaw-symmetric Q" in err


def test_the_request_chooses_another_action_space_only_explicitly(make_node, default_model):
    node = make_node(model_path=str(default_model))
    msg = scene(2)[2]
    plain = grasp(ask(node, ProposeGrasp.Request(heightmap=msg)))
    assert grasp(ask(node, ProposeGrasp.Request(heightmap=msg, action_space="default"))) == plain
    custom = ProposeGrasp.Request(heightmap=msg, action_space="custom", object_mask=True, object_min_height=0.01,
                                  edge_margin=0.016, symmetric_q=True)
    assert grasp(ask(node, custom)) == plain
    anywhere = ProposeGrasp.Request(heightmap=msg, action_space="custom")  # all four fields off: the seed's
    assert grasp(ask(node, anywhere)) == grasp(ask(node, ProposeGrasp.Request(heightmap=msg, action_space="seed")))

    refused = ask(node, ProposeGrasp.Request(heightmap=msg, action_space="anywhere"))
    assert not refused.success
    assert "action_space must be ''" in refused.message and "'custom'" in refused.message
    assert "'seed'" in refused.message and "got 'anywhere'" in refused.message
    for action_space in ("", "seed"):  # fields the chosen action space would ignore
        refused = ask(node, ProposeGrasp.Request(heightmap=msg, action_space=action_space, object_mask=True,
                                                 edge_margin=0.01))
        assert not refused.success
        assert "sets object_mask, edge_margin" in refused.message and "set action_space to 'custom'" in \
            refused.message
    bad = ask(node, ProposeGrasp.Request(heightmap=msg, action_space="custom", object_mask=True,
                                         edge_margin=float("nan")))
    assert not bad.success and "bad action space in the request" in bad.message


def test_repeated_plain_requests_after_a_failure_get_the_same_grasp_unless_it_is_excluded(make_node,
                                                                                          default_model):
    """What ProposeGrasp.srv tells an outside caller: greedy is deterministic; exclusions change it."""
    node = make_node(model_path=str(default_model))
    msg = scene(3)[2]
    first = ask(node, ProposeGrasp.Request(heightmap=msg))
    assert grasp(ask(node, ProposeGrasp.Request(heightmap=msg))) == grasp(first)
    (u, v), rotation = first.center_px, first.rotation_index
    excluded = ask(node, ProposeGrasp.Request(heightmap=msg, exclude_rotation_index=[rotation],
                                              exclude_pixel_x=[int(u)], exclude_pixel_y=[int(v)],
                                              exclude_radius_px=2.0))
    assert grasp(excluded) != grasp(first)
