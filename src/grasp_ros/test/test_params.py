"""Parameters are read-only unless a node applies them live; live changes are checked and applied, or refused.
A config dataclass declares a node's parameters with its own defaults and checks."""
import dataclasses
from dataclasses import dataclass

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.parameter import Parameter  # noqa: E402

from grasp_ros.params import (ParameterError, declare, declare_config, in_range,  # noqa: E402
                              live_parameter_names, one_of, parameter, watch_live_parameters)


@pytest.fixture
def node():
    rclpy.init()
    n = rclpy.create_node("params_test")
    yield n
    n.destroy_node()
    rclpy.shutdown()


def test_start_up_parameters_are_read_only(node):
    p = {"rate": declare(node, "rate", 2.0, "Rate.", check=in_range(0.1, 10.0), requirement="0.1 <= rate <= 10")}
    assert node.describe_parameter("rate").read_only
    result = node.set_parameters([Parameter("rate", value=3.0)])[0]
    assert not result.successful and "read-only" in result.reason
    assert node.get_parameter("rate").value == 2.0 and p["rate"] == 2.0


def test_live_parameters_are_checked_applied_or_refused(node):
    applied = []

    def apply(name, value):
        if value == 0.25:
            raise ValueError("the schedule cannot start there")
        applied.append((name, value))
        p[name] = value

    p = {"epsilon": declare(node, "epsilon", 0.5, "Epsilon.", check=in_range(0.0, 1.0),
                            requirement="0 <= epsilon <= 1", live=True),
         "size": declare(node, "size", 3, "Size.", read_only=False)}
    watch_live_parameters(node, apply)
    assert live_parameter_names(node) == {"epsilon"} and not node.describe_parameter("epsilon").read_only
    assert node.set_parameters([Parameter("epsilon", value=0.1)])[0].successful
    assert p["epsilon"] == 0.1 and applied == [("epsilon", 0.1)]
    bad = node.set_parameters([Parameter("epsilon", value=1.5)])[0]
    assert not bad.successful and "0 <= epsilon <= 1" in bad.reason
    refused = node.set_parameters([Parameter("epsilon", value=0.25)])[0]
    assert not refused.successful and "cannot start there" in refused.reason
    assert node.get_parameter("epsilon").value == 0.1 and p["epsilon"] == 0.1  # unchanged by refusals
    size = node.set_parameters([Parameter("size", value=4)])[0]  # writable but not live: refused by the watcher
    assert not size.successful and "read at start-up only" in size.reason and p["size"] == 3


def test_bad_start_values_still_stop_the_node(node):
    with pytest.raises(ParameterError, match="0 <= e <= 1"):
        declare(node, "e", 2.0, "E.", check=in_range(0.0, 1.0), requirement="0 <= e <= 1", live=True)


@dataclass(frozen=True)
class CameraConfig:
    topic: str = parameter("camera/image", "Image topic.")
    rate: float = parameter(2.0, "Frames per second.", check=in_range(0.1, 10.0), requirement="0.1 <= rate <= 10")
    mode: str = parameter("fast", "fast or slow.", check=one_of("fast", "slow"), requirement="fast or slow")
    exposure: float = parameter(0.5, "Exposure, seconds (live).", check=in_range(0.0, 1.0),
                                requirement="0 <= exposure <= 1", live=True)
    box: tuple = parameter((1.0, 2.0), "A list parameter.")

    def __post_init__(self) -> None:
        if self.mode == "slow" and self.rate > 1.0:
            raise ValueError("slow mode needs rate <= 1")


def test_a_config_declares_its_fields_with_their_defaults_and_descriptions(node):
    config = declare_config(node, CameraConfig, prefix="camera.")
    assert config == CameraConfig() and config.box == (1.0, 2.0)
    for field in dataclasses.fields(CameraConfig):
        name = "camera." + field.name
        assert node.get_parameter(name).value == (list(field.default) if field.name == "box" else field.default)
        assert node.describe_parameter(name).description.startswith(field.metadata["description"])
    assert node.describe_parameter("camera.rate").read_only
    assert live_parameter_names(node) == {"camera.exposure"}


def test_a_config_takes_the_values_the_node_is_started_with():
    rclpy.init()
    try:
        node = rclpy.create_node("params_test", parameter_overrides=[Parameter("rate", value=5.0),
                                                                     Parameter("box", value=[3.0, 4.0])])
        assert declare_config(node, CameraConfig) == CameraConfig(rate=5.0, box=(3.0, 4.0))
        node.destroy_node()
    finally:
        rclpy.shutdown()


@pytest.mark.parametrize("name, value, message", [
    ("rate", 20.0, "parameter 'rate' = 20.0 is invalid: 0.1 <= rate <= 10"),
    ("mode", "medium", "parameter 'mode' = 'medium' is invalid: fast or slow"),
    ("mode", "slow", "CameraConfig.*slow mode needs rate <= 1"),  # the dataclass's own check, across fields
])
def test_a_bad_value_stops_the_node_naming_the_parameter_and_what_it_must_be(name, value, message):
    rclpy.init()
    try:
        node = rclpy.create_node("params_test", parameter_overrides=[Parameter(name, value=value)])
        with pytest.raises(ParameterError, match=message):
            declare_config(node, CameraConfig)
        node.destroy_node()
    finally:
        rclpy.shutdown()


def test_live_config_fields_are_checked_then_applied(node):
    holder = {"config": declare_config(node, CameraConfig)}

    def apply(name, value):
        holder["config"] = dataclasses.replace(holder["config"], **{name: value})

    watch_live_parameters(node, apply)
    assert node.set_parameters([Parameter("exposure", value=0.25)])[0].successful
    assert holder["config"].exposure == 0.25
    bad = node.set_parameters([Parameter("exposure", value=3.0)])[0]
    assert not bad.successful and "0 <= exposure <= 1" in bad.reason and holder["config"].exposure == 0.25
    assert "read-only" in node.set_parameters([Parameter("rate", value=3.0)])[0].reason


def test_every_field_must_be_a_parameter(node):
    @dataclass(frozen=True)
    class Undescribed:
        rate: float = 2.0

    with pytest.raises(TypeError, match="Undescribed.rate is not a parameter"):
        declare_config(node, Undescribed)
