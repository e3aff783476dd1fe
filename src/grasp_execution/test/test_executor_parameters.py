"""`ros2 param set` on the executor: the epsilon schedule changes live (checked), everything else is read-only."""
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.dqn import DQNConfig, epsilon_at  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from grasp_execution.backend import GraspBackend, GraspOutcome, ResetOutcome  # noqa: E402
from grasp_execution.executor_node import ExecutorNode  # noqa: E402

pytestmark = pytest.mark.ros


class IdleBackend(GraspBackend):
    name = "idle"

    def execute_grasp(self, pose, angle):
        return GraspOutcome.refused("idle test backend")

    def reset(self):
        return ResetOutcome(False, "idle test backend")


@pytest.fixture
def executor():
    rclpy.init()
    node = ExecutorNode(backend=IdleBackend())  # the grasp loop is never started
    yield node
    node.destroy_node()
    rclpy.shutdown()


def test_epsilon_schedule_changes_live(executor):
    executor.attempts = 10
    before = executor.epsilon()
    results = executor.set_parameters([Parameter("epsilon_start", value=0.9), Parameter("epsilon_end", value=0.2)])
    assert all(r.successful for r in results), [r.reason for r in results]
    want = epsilon_at(DQNConfig(epsilon_start=0.9, epsilon_end=0.2), 10)
    assert executor.epsilon() == pytest.approx(want) and executor.epsilon() != pytest.approx(before)
    assert executor.params["epsilon_start"] == 0.9


def test_bad_live_values_are_refused_with_the_reason(executor):
    eps = executor.epsilon()
    bad = executor.set_parameters([Parameter("epsilon_start", value=1.5)])[0]
    assert not bad.successful and "0 <= epsilon_start <= 1" in bad.reason
    schedule = executor.set_parameters([Parameter("epsilon_schedule", value="sometimes")])[0]
    assert not schedule.successful
    assert executor.epsilon() == eps and executor.get_parameter("epsilon_start").value == 0.5


def test_start_up_parameters_are_read_only(executor):
    for name, value in (("max_attempts", 5), ("window", 7), ("backend", "moveit"), ("moveit.grasp_depth", 0.01)):
        result = executor.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and "read-only" in result.reason, name
    assert executor.params["max_attempts"] == 0
