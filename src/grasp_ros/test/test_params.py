"""Parameters are read-only unless a node applies them live; live changes are checked and applied, or refused."""
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from rclpy.parameter import Parameter  # noqa: E402

from grasp_ros.params import ParameterError, declare, in_range, live_parameter_names, watch_live_parameters  # noqa: E402


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

    p = {"epsilon": declare(node, "epsilon", 0.5, "Epsilon.", check=in_range(0.0, 1.0),
                            requirement="0 <= epsilon <= 1", live=True),
         "size": declare(node, "size", 3, "Size.")}
    watch_live_parameters(node, p, apply)
    assert live_parameter_names(node) == {"epsilon"} and not node.describe_parameter("epsilon").read_only
    assert node.set_parameters([Parameter("epsilon", value=0.1)])[0].successful
    assert p["epsilon"] == 0.1 and applied == [("epsilon", 0.1)]
    bad = node.set_parameters([Parameter("epsilon", value=1.5)])[0]
    assert not bad.successful and "0 <= epsilon <= 1" in bad.reason
    refused = node.set_parameters([Parameter("epsilon", value=0.25)])[0]
    assert not refused.successful and "cannot start there" in refused.reason
    assert node.get_parameter("epsilon").value == 0.1 and p["epsilon"] == 0.1  # unchanged by refusals
    assert not node.set_parameters([Parameter("size", value=4)])[0].successful


def test_bad_start_values_still_stop_the_node(node):
    with pytest.raises(ParameterError, match="0 <= e <= 1"):
        declare(node, "e", 2.0, "E.", check=in_range(0.0, 1.0), requirement="0 <= e <= 1", live=True)
