"""What the learner shows while it trains: TensorBoard (grasp_learning.tensorboard_log) under the run's folder, and
one message per DQN update on `/grasp/learner/updates` for live views (the browser viewer plots the loss from it).

`/grasp/learner/updates`: std_msgs/Float64MultiArray, data = [step, loss, td_error, q_predicted, q_target]
(UPDATE_FIELDS; also written into layout.dim[0].label), reliable, volatile.
"""
from __future__ import annotations

from pathlib import Path

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

UPDATE_TOPIC = "/grasp/learner/updates"
UPDATE_FIELDS = ("step", "loss", "td_error", "q_predicted", "q_target")
UPDATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


def tensorboard_folder(setting: str, checkpoint_dir: str) -> Path | None:
    """The TensorBoard folder: `setting`, or (for '') `tensorboard/` beside the checkpoints in the run's folder;
    None for 'off'."""
    if setting == "off":
        return None
    return Path(setting) if setting else Path(checkpoint_dir).resolve().parent / "tensorboard"


class LearnerMonitor:
    def __init__(self, node, tensorboard_dir: Path | None, image_every: int = 50, window: int = 100):
        self._logger = node.get_logger()
        self.tensorboard = None
        if tensorboard_dir is not None:
            from grasp_learning.tensorboard_log import LearnerTensorBoard  # noqa: PLC0415
            self.tensorboard = LearnerTensorBoard(tensorboard_dir, image_every, window)
            node.get_logger().info(f"TensorBoard: tensorboard --logdir {tensorboard_dir}")
        self._publisher = node.create_publisher(Float64MultiArray, UPDATE_TOPIC, UPDATE_QOS)
        self._layout = [MultiArrayDimension(label=",".join(UPDATE_FIELDS), size=len(UPDATE_FIELDS),
                                            stride=len(UPDATE_FIELDS))]

    def _failed(self, what: str, error: Exception) -> None:
        """A view must never cost learning: log (at most once a minute) and go on."""
        self._logger.error(f"TensorBoard {what} not written: {type(error).__name__}: {error}",
                           throttle_duration_sec=60.0)

    def on_experience(self, experience) -> None:
        if self.tensorboard is not None:
            try:
                self.tensorboard.on_experience(experience.reward, experience.epsilon)
            except Exception as e:  # noqa: BLE001
                self._failed("experience", e)

    def after_update(self, stats, experience=None, qnet=None) -> None:
        msg = Float64MultiArray()
        msg.layout.dim = self._layout
        msg.data = [float(stats.step), float(stats.loss), float(stats.target - stats.predicted),
                    float(stats.predicted), float(stats.target)]
        self._publisher.publish(msg)
        if self.tensorboard is not None:
            try:
                self.tensorboard.after_update(stats, experience, qnet)
            except Exception as e:  # noqa: BLE001
                self._failed("update", e)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
