"""viewer: watch the learning cell in a web browser, where RViz is not installed (rerun's web viewer, served from
this machine with no internet).

    make demo DEMO_ARGS="--viz"                          # the demo starts it and prints the address
    ros2 run grasp_bringup viewer --ros-args -p namespace:=/robot1   # beside any running graph

then open http://127.0.0.1:9090/?url=rerun%2Bhttp://127.0.0.1:9876/proxy (from another computer: ssh -L 9090:...
-L 9876:... first). It shows, on one `time` timeline (seconds since the viewer started):

- `heightmap/color`, `heightmap/depth`: the robot's newest heightmap (`<namespace>/grasp/heightmap`);
- `proposal/affordance`: the affordance map of the chosen rotation over the heightmap the proposal was made on, with
  the jaw (`/grasp/affordance`, published by the affordance node while someone subscribes);
- `proposal/rotations`: every rotation's affordance map as a grid, the chosen one framed (`/grasp/affordance_grid`);
- `proposal/grasp`: the proposed grasp (pixel, angle, Q, explored or greedy) from propose_grasp's service events;
- `curves/success/G` (over the last `window` attempts), `curves/success/epsilon`: from `/grasp/experience`;
  `curves/loss`, `curves/td_error` from `/grasp/learner/updates`; `curves/learner/model_version` from `/grasp/model`.

RViz stays the tool on a real ROS 2 install (config/grasp.rviz shows the same topics).
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from grasp_interfaces.msg import GraspExperience, Heightmap, ModelVersion
from grasp_interfaces.srv import ProposeGrasp
from rclpy.node import Node
from sensor_msgs.msg import Image
from service_msgs.msg import ServiceEventInfo
from std_msgs.msg import Float64MultiArray

from grasp_ros.conversions import image_to_numpy, msg_to_heightmap
from grasp_ros.node_main import spin_node
from grasp_ros.params import ParameterError, declare_config, in_range, parameter
from grasp_ros.qos import EXPERIENCE_QOS, LATEST_QOS, MODEL_QOS, SENSOR_QOS, SERVICE_EVENT_QOS

READY_MESSAGE = "viewer ready"
UPDATES_TOPIC = "/grasp/learner/updates"  # grasp_learning.learner_monitor (not imported: no torch here)


def port_is_free(port: int) -> bool:
    """True if nothing listens on `port` (rerun binds 0.0.0.0)."""
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def viewer_url(web_port: int, grpc_port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{web_port}/?url=rerun%2Bhttp://{host}:{grpc_port}/proxy"


def blueprint():
    import rerun.blueprint as rrb  # noqa: PLC0415

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(rrb.Spatial2DView(origin="heightmap/color", name="colour heightmap"),
                         rrb.Spatial2DView(origin="heightmap/depth", name="depth heightmap")),
            rrb.Vertical(rrb.Spatial2DView(origin="proposal/affordance", name="affordance (chosen rotation)"),
                         rrb.Spatial2DView(origin="proposal/rotations", name="all rotations")),
            rrb.Vertical(rrb.TimeSeriesView(origin="curves/success", name="G and epsilon"),
                         rrb.TimeSeriesView(origin="curves/learner", name="loss"),
                         rrb.TextLogView(origin="proposal/log", name="proposals")),
            column_shares=[1, 1, 1]),
        collapse_panels=True)


@dataclass(frozen=True)
class ViewerConfig:
    """The viewer's parameters."""

    namespace: str = parameter("/robot1", "Robot namespace whose heightmaps are shown.",
                               check=lambda v: v.startswith("/"), requirement="an absolute namespace")
    web_port: int = parameter(9090, "Port of the web page.", check=in_range(1, 65535), requirement="1..65535")
    grpc_port: int = parameter(9876, "Port of rerun's data stream (the page connects to it).",
                               check=in_range(1, 65535), requirement="1..65535")
    window: int = parameter(50, "Attempts in the success rate G.", check=in_range(1, 100000),
                            requirement="1..100000")


class Viewer(Node):
    def __init__(self, **kwargs):
        super().__init__("viewer", **kwargs)
        self.config = config = declare_config(self, ViewerConfig)
        import rerun as rr  # noqa: PLC0415 - the viewer is optional; the rest of the stack never imports rerun

        self.rr = rr
        for port in (config.web_port, config.grpc_port):  # rerun aborts the process on a busy port: check first
            if not port_is_free(port):
                raise ParameterError(f"cannot serve the viewer: port {port} is in use; choose others with web_port "
                                     "/ grpc_port (demo: --viz-port)")
        rr.init("grasp_learning", spawn=False)
        try:
            # The layout goes as its own message: serve_grpc(default_blueprint=...) hung for good in about 1 start of
            # 12 here (rerun-sdk 0.25.1; 0.23.1 too), before the node could say it was ready.
            uri = rr.serve_grpc(grpc_port=config.grpc_port)
            rr.send_blueprint(blueprint())
            rr.serve_web_viewer(web_port=config.web_port, open_browser=False, connect_to=uri)
        except Exception as e:  # noqa: BLE001 - a port in use is the usual reason
            raise ParameterError(f"cannot serve the viewer on ports {config.web_port} / {config.grpc_port}: {e}; "
                                 "choose others with web_port / grpc_port (demo: --viz-port)") from None
        self.url = viewer_url(config.web_port, config.grpc_port)
        self._t0 = time.monotonic()
        self._rewards: deque[int] = deque(maxlen=config.window)
        self.counts = {"heightmaps": 0, "experiences": 0, "proposals": 0, "updates": 0, "images": 0}
        hm_topic = f"{config.namespace.rstrip('/')}/grasp/heightmap"
        self.create_subscription(Heightmap, hm_topic, self._on_heightmap, LATEST_QOS)
        self.create_subscription(Image, "/grasp/affordance", lambda m: self._on_image("proposal/affordance", m),
                                 SENSOR_QOS)
        self.create_subscription(Image, "/grasp/affordance_grid", lambda m: self._on_image("proposal/rotations", m),
                                 SENSOR_QOS)
        self.create_subscription(ProposeGrasp.Event, "/propose_grasp/_service_event", self._on_proposal,
                                 SERVICE_EVENT_QOS)
        self.create_subscription(GraspExperience, "/grasp/experience", self._on_experience, EXPERIENCE_QOS)
        self.create_subscription(Float64MultiArray, UPDATES_TOPIC, self._on_update, 100)
        self.create_subscription(ModelVersion, "/grasp/model", self._on_model, MODEL_QOS)
        self.get_logger().info(f"{READY_MESSAGE}: open {self.url} (heightmaps from {hm_topic})")

    def _now(self) -> None:
        self.rr.set_time("time", duration=time.monotonic() - self._t0)

    def _on_heightmap(self, msg: Heightmap) -> None:
        try:
            color, depth, _ = msg_to_heightmap(msg)
        except ValueError as e:
            self.get_logger().warning(f"bad heightmap: {e}", throttle_duration_sec=10.0)
            return
        self._now()
        self.rr.log("heightmap/color", self.rr.Image(color))
        self.rr.log("heightmap/depth", self.rr.DepthImage(depth, meter=1.0, colormap="turbo"))
        self.counts["heightmaps"] += 1

    def _on_image(self, path: str, msg: Image) -> None:
        try:
            image = image_to_numpy(msg, ("rgb8",))
        except ValueError as e:
            self.get_logger().warning(f"bad {path} image: {e}", throttle_duration_sec=10.0)
            return
        self._now()
        self.rr.log(path, self.rr.Image(image))
        self.counts["images"] += 1

    def _on_proposal(self, event) -> None:
        if event.info.event_type != ServiceEventInfo.RESPONSE_SENT or not event.response:
            return
        r = event.response[0]
        self._now()
        if not r.success:
            self.rr.log("proposal/log", self.rr.TextLog(f"refused: {r.message}", level="WARN"))
            return
        u, v = r.center_px
        half = 6.0
        du, dv = half * math.cos(r.angle), half * math.sin(r.angle)
        kind = "explored" if r.explored else "greedy"
        self.rr.log("proposal/affordance/grasp", self.rr.LineStrips2D([[[u - du, v - dv], [u + du, v + dv]]],
                                                                      colors=[255, 255, 255], radii=0.6))
        self.rr.log("proposal/log", self.rr.TextLog(
            f"{kind} grasp at pixel ({u:.0f}, {v:.0f}), rotation {r.rotation_index}/{r.num_rotations}, "
            f"Q {r.q_value:.3f}, model v{r.model_version}", level="INFO"))
        self.counts["proposals"] += 1

    def _on_experience(self, msg: GraspExperience) -> None:
        self._rewards.append(1 if msg.reward > 0.5 else 0)
        self.counts["experiences"] += 1
        self._now()
        rr = self.rr
        rr.log("curves/success/G", rr.Scalars(float(np.mean(self._rewards))))
        rr.log("curves/success/epsilon", rr.Scalars(float(msg.epsilon)))

    def _on_update(self, msg: Float64MultiArray) -> None:
        if len(msg.data) < 3:
            return
        self.counts["updates"] += 1
        self._now()
        self.rr.log("curves/learner/loss", self.rr.Scalars(float(msg.data[1])))
        self.rr.log("curves/learner/td_error", self.rr.Scalars(float(msg.data[2])))

    def _on_model(self, msg: ModelVersion) -> None:
        self._now()
        self.rr.log("curves/learner/model_version", self.rr.Scalars(float(msg.version)))


def main(args=None) -> int:
    return spin_node(Viewer, "viewer", args)


if __name__ == "__main__":
    raise SystemExit(main())
