"""QoS profiles of the grasp topics, in one place so publishers and subscribers always match."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# /grasp/experience: every attempt must reach the learner. Reliable, and transient-local so that experiences
# published before the learner matched the executor (start-up discovery) or while it was restarting are
# delivered when it (re)joins; the learner stores each id once. The publisher keeps the last 1000 for that
# (~175 MB at the fast profile's 112 px, ~700 MB at 224 px).
EXPERIENCE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /grasp/model: the last announced checkpoint reaches late joiners (transient local, depth 1).
MODEL_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)

# What this stack publishes for views and streams (heightmap images, affordance views, the simulated camera): the
# newest frame matters, old ones may be dropped. Reliable, so that reliable *and* best-effort subscribers connect.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)

# /grasp/heightmap for late joiners (the affordance node needs the latest one at once).
LATEST_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)

# Subscriptions to camera streams (colour, aligned depth, CameraInfo): the ROS sensor-data profile (best effort,
# volatile, keep last 5). A best-effort subscription connects to best-effort publishers (realsense2_camera with
# `*_qos:=SENSOR_DATA`, many bag replays) *and* to reliable ones (realsense2_camera's default, grasp_sim); a reliable
# one would not hear the former at all. Best effort loses large frames: a 640x480 rgb8 + 16UC1 pair (~1.5 MB) is
# more than Fast DDS's default transport buffers hold (512 KiB shared-memory segment, ~208 KiB UDP socket buffers),
# so fragments are lost whenever the subscriber drains them late and nothing resends them. Fine for a 30 Hz stream;
# a camera that sends one frame per action (grasp_sim) needs camera_qos "reliable" (config/ur5_sim.yaml).
CAMERA_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)
CAMERA_QOS_CHOICES = ("sensor_data", "reliable")


def camera_qos(name: str) -> QoSProfile:
    """The camera subscription profile named by a node's `camera_qos` parameter."""
    if name == "sensor_data":
        return CAMERA_QOS
    if name == "reliable":
        return SENSOR_QOS
    raise ValueError(f"camera_qos must be one of {CAMERA_QOS_CHOICES}, got {name!r}")

# propose_grasp, server and the project's clients. The default services profile keeps the last 10: a burst of
# requests larger than that, arriving before the server takes them, overwrites the oldest unseen (20 clients calling
# at once lost 8 first calls with no error). The affordance node takes each request at once and answers "busy,
# retry" beyond `max_waiting_requests`, so the queue only has to hold a burst; its writer keeps as many responses
# for resending. With Fast DDS every client of a service receives every response and keeps only its own, so a
# client whose process holds many clients needs a deeper queue too (docs/reliability.md).
PROPOSE_SERVICE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.VOLATILE)

# Service events (`<service>/_service_event`, ROS 2 service introspection): every request and response of
# propose_grasp, for bags and viewers. Reliable; a late subscriber does not need the history.
SERVICE_EVENT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.VOLATILE)
SERVICE_INTROSPECTION_CHOICES = ("off", "metadata", "contents")


def configure_service_events(node, service, mode: str) -> None:
    """Publish `service`'s events on `<service>/_service_event` (what `ros2 bag record --all-services` records):
    off, metadata (who called when) or contents (the requests and responses too)."""
    from rclpy.service_introspection import ServiceIntrospectionState  # noqa: PLC0415

    states = {"off": ServiceIntrospectionState.OFF, "metadata": ServiceIntrospectionState.METADATA,
              "contents": ServiceIntrospectionState.CONTENTS}
    if mode not in states:
        raise ValueError(f"service introspection must be one of {SERVICE_INTROSPECTION_CHOICES}, got {mode!r}")
    service.configure_introspection(node.get_clock(), SERVICE_EVENT_QOS, states[mode])
