"""bag_recorder: record topics into a ROS 2 bag (MCAP, CDR) with the stack's own Python, where `ros2 bag` is absent.

    ros2 run grasp_ros bag_recorder --ros-args -p output:=runs/bag1 \
        -p topics:="['/grasp/experience', '/propose_grasp/_service_event', '/grasp/model']"

On a full ROS 2 install `ros2 bag record -s mcap /grasp/experience /propose_grasp/_service_event /grasp/model` makes
the same kind of bag. Each topic is subscribed once its type is known from the graph (it waits and says so), with
the raw CDR bytes written as they arrive (no deserialisation). A topic whose publishers all keep history for late
joiners (transient local, like /grasp/experience and /grasp/model) is subscribed that way too, so the bag also holds
what was published before the recorder matched. The bag is closed (metadata.yaml written) on Ctrl-C / SIGTERM.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from grasp_ros.bag import BagWriter, message_class
from grasp_ros.node_main import spin_node
from grasp_ros.params import ParameterError, declare_config, parameter

READY_MESSAGE = "bag recorder ready"


@dataclass(frozen=True)
class BagRecorderConfig:
    output: str = parameter("", "Bag folder to create (must not exist).", check=bool, requirement="a folder name")
    topics: tuple[str, ...] = parameter(("/grasp/experience", "/propose_grasp/_service_event", "/grasp/model"),
                                        "Topics to record (absolute names).",
                                        check=lambda v: bool(v) and all(t.startswith("/") for t in v),
                                        requirement="a list of absolute topic names")
    depth: int = parameter(1000, "Subscription history depth (and transient-local backlog).", check=lambda v: v >= 1,
                           requirement="depth >= 1")


class BagRecorder(Node):
    def __init__(self, **kwargs):
        super().__init__("bag_recorder", **kwargs)
        self.config = declare_config(self, BagRecorderConfig)
        try:
            self.bag = BagWriter(self.config.output, {})
        except (FileExistsError, OSError) as e:
            raise ParameterError(f"output {self.config.output!r}: {e}") from None
        self._waiting_topics = list(self.config.topics)
        self._recording = {}
        self._waiting_since = time.monotonic()
        self.create_timer(0.5, self._subscribe_known)
        self.get_logger().info(f"{READY_MESSAGE}: recording {list(self.config.topics)} into {self.bag.path}")
        self._subscribe_known()

    def _qos(self, topic: str) -> QoSProfile:
        publishers = self.get_publishers_info_by_topic(topic)
        latched = bool(publishers) and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                                           for p in publishers)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.config.depth,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _subscribe_known(self) -> None:
        if not self._waiting_topics:
            return
        known = dict(self.get_topic_names_and_types())
        for topic in list(self._waiting_topics):
            types = known.get(topic)
            if not types or not self.get_publishers_info_by_topic(topic):
                continue
            try:
                cls = message_class(types[0])
                self.bag.add_topic(topic, cls)
            except ValueError as e:
                self.get_logger().error(f"cannot record {topic} ({types[0]}): {e}")
                self._waiting_topics.remove(topic)
                continue
            self._recording[topic] = self.create_subscription(
                cls, topic, lambda data, t=topic: self._on_message(t, data), self._qos(topic), raw=True)
            self._waiting_topics.remove(topic)
            self.get_logger().info(f"recording {topic} ({types[0]})")
        if self._waiting_topics and time.monotonic() - self._waiting_since > 10.0:
            self.get_logger().info(f"still waiting for a publisher on {self._waiting_topics}")
            self._waiting_since = time.monotonic()

    def _on_message(self, topic: str, data: bytes) -> None:
        self.bag.write(topic, data, self.get_clock().now().nanoseconds)

    def destroy_node(self):
        self.bag.close()
        counts = ", ".join(f"{t}: {n}" for t, n in self.bag.counts.items()) or "nothing"
        self.get_logger().info(f"bag {self.bag.path} closed ({counts})")
        return super().destroy_node()


def main(args=None) -> int:
    return spin_node(BagRecorder, "bag_recorder", args)


if __name__ == "__main__":
    raise SystemExit(main())
