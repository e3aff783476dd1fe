"""The learner's TensorBoard and update messages: what is written, and a failing view never stops learning."""
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 environment (make test sets it up)")
from grasp_learning.learner_monitor import UPDATE_FIELDS, LearnerMonitor, tensorboard_folder  # noqa: E402
from grasp_learning.tensorboard_log import LearnerTensorBoard, affordance_panel  # noqa: E402


class FakeNode:
    def __init__(self):
        self.published, self.errors = [], []

    def get_logger(self):
        node = self
        return SimpleNamespace(info=lambda m, **k: None, error=lambda m, **k: node.errors.append(m))

    def create_publisher(self, msg_type, topic, qos):
        return SimpleNamespace(publish=self.published.append)


class FakeQNet:
    def predict(self, color, depth):
        q = np.zeros((4,) + depth.shape, np.float32)
        q[2, 5, 7] = 1.5
        return q


def stats(step):
    return SimpleNamespace(step=step, loss=0.5 / step, target=1.0, predicted=0.25)


def test_tensorboard_folder_is_in_the_run_folder(tmp_path):
    assert tensorboard_folder("", str(tmp_path / "run" / "checkpoints")) == tmp_path / "run" / "tensorboard"
    assert str(tensorboard_folder("/x/tb", "c")) == "/x/tb"
    assert tensorboard_folder("off", "c") is None


def test_scalars_and_images_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = LearnerTensorBoard(tmp_path, image_every=2, window=3)
    experience = SimpleNamespace(color_hm=np.full((16, 16, 3), 90, np.uint8), depth_hm=np.zeros((16, 16), np.float32),
                                 pixel=(7, 5), reward=1.0, epsilon=0.3)
    for step in (1, 2, 3, 4):
        board.on_experience(float(step % 2), 0.5 / step)
        board.after_update(stats(step), experience, FakeQNet())
    board.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [e.value for e in events.Scalars("G/window")] == pytest.approx([1.0, 0.5, 2 / 3, 1 / 3])  # window 3
    assert [e.value for e in events.Scalars("td_error/update")] == pytest.approx([0.75] * 4)
    assert [e.step for e in events.Images("affordance/best_rotation")] == [2, 4]
    assert events.Scalars("q/map_max")[0].value == pytest.approx(1.5)
    panel = affordance_panel(experience.color_hm, np.ones((16, 16), np.float32), (3, 4))
    assert panel.shape == (16, 32, 3) and tuple(panel[8, 24]) == (128, 0, 0)  # Q 1 -> JET's dark red


def test_a_failing_view_is_logged_and_learning_goes_on():
    node = FakeNode()
    monitor = LearnerMonitor(node, None)
    broken = SimpleNamespace(after_update=lambda *a: 1 / 0, on_experience=lambda *a: 1 / 0, close=lambda: None)
    monitor.tensorboard = broken
    monitor.after_update(stats(3))
    monitor.on_experience(SimpleNamespace(reward=1.0, epsilon=0.1))
    assert len(node.errors) == 2 and "ZeroDivisionError" in node.errors[0]
    (msg,) = node.published
    assert list(msg.data) == [3.0, pytest.approx(0.5 / 3), 0.75, 0.25, 1.0]
    assert msg.layout.dim[0].label == ",".join(UPDATE_FIELDS)
