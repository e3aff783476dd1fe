"""`ros2 param set` on the executor: learning_overrides (epsilon, exploration, episode rule) changes live (checked),
everything else is read-only. Its parameters are ExecutorConfig's; epsilon comes from the learning preset."""
import dataclasses

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_core.exploration import ExplorationConfig, epsilon_at  # noqa: E402
from grasp_core.learning import PRESETS  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from grasp_execution.backend import GraspBackend, GraspOutcome, ResetOutcome  # noqa: E402
from grasp_execution.executor_node import ExecutorConfig, ExecutorNode  # noqa: E402
from grasp_execution.moveit_backend import MoveItBackendConfig, MoveItGraspConfig  # noqa: E402

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
    text = "exploration.epsilon_start=0.9 exploration.epsilon_end=0.2"
    result = executor.set_parameters([Parameter("learning_overrides", value=text)])[0]
    assert result.successful, result.reason
    want = epsilon_at(ExplorationConfig(epsilon_start=0.9, epsilon_end=0.2), 10)
    assert executor.epsilon() == pytest.approx(want) and executor.epsilon() != pytest.approx(before)
    assert executor.config.learning_overrides == text


def test_bad_live_values_are_refused_with_the_reason(executor):
    eps = executor.epsilon()
    bad = executor.set_parameters([Parameter("learning_overrides", value="exploration.epsilon_start=1.5")])[0]
    assert not bad.successful and "epsilon_start must be a number in [0, 1]" in bad.reason
    schedule = executor.set_parameters(
        [Parameter("learning_overrides", value="exploration.epsilon_schedule=sometimes")])[0]
    assert not schedule.successful and "unknown epsilon schedule" in schedule.reason
    assert executor.epsilon() == eps and executor.get_parameter("learning_overrides").value == ""
    preset = executor.set_parameters([Parameter("learning", value="seed")])[0]
    assert not preset.successful and "read-only" in preset.reason


def test_start_up_parameters_are_read_only(executor):
    for name, value in (("max_attempts", 5), ("window", 7), ("backend", "moveit"), ("moveit.grasp_depth", 0.01)):
        result = executor.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and "read-only" in result.reason, name
    assert executor.config.max_attempts == 0


def test_the_declared_parameters_are_the_configs_with_their_defaults(executor):
    assert executor.config == ExecutorConfig() and executor.moveit_config == MoveItBackendConfig()
    for field in dataclasses.fields(ExecutorConfig):
        assert executor.get_parameter(field.name).value == field.default, field.name
    assert list(executor.get_parameter("moveit.table_box").value) == list(MoveItBackendConfig.table_box)
    assert executor.moveit_config.grasp_config() == MoveItGraspConfig()  # the grasp geometry's defaults, not retyped


def test_epsilon_defaults_are_the_core_exploration_configs(executor):
    """No epsilon number is retyped in the executor: the schedule is the preset's ExplorationConfig, the one the
    harness runs."""
    exploration = PRESETS[ExecutorConfig().learning].exploration
    assert executor.learning.exploration == exploration
    assert executor.epsilon() == epsilon_at(exploration, 0) == exploration.epsilon_start
    assert [f.name for f in dataclasses.fields(ExecutorConfig) if "epsilon" in f.name] == ["epsilon_step_offset"]
