"""propose_grasp_client: ask `/propose_grasp` for grasps with a plain request, as any other node can.

An example to copy: it imports nothing but rclpy and grasp_interfaces. A plain request (epsilon 0, no other field
set) gets the loaded model's own policy: its greedy grasp on the newest heightmap of `grasp/heightmap`, chosen in
the action space the model was trained for (ProposeGrasp.srv). The same heightmap and model give the same greedy
grasp every time; after a failed grasp on an unchanged scene, pass the failed grasp in the request's exclude_*
fields (or a small epsilon) to get another one.

    propose_grasp_client                         # one grasp, printed
    propose_grasp_client --count 3 --json        # three, one JSON object per line
    ros2 run grasp_affordance propose_grasp_client --ros-args -r __ns:=/robot1
"""
from __future__ import annotations

import argparse
import json
import sys

import rclpy
from grasp_interfaces.srv import ProposeGrasp
from rclpy.utilities import remove_ros_args

PROG = "propose_grasp_client"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Ask the affordance node for grasps with a plain ProposeGrasp request and print them. ROS "
                    "arguments (--ros-args -r __ns:=/robot1 ...) go after the others.")
    parser.add_argument("--service", default="propose_grasp",
                        help="service name (relative names resolve in the node's namespace)")
    parser.add_argument("--count", type=int, default=1,
                        help="requests to send, one after another (greedy ones on an unchanged heightmap return "
                             "the same grasp)")
    parser.add_argument("--epsilon", type=float, default=0.0,
                        help="exploration probability in [0, 1]; 0 = the model's greedy grasp")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for the service to appear, and for each response")
    parser.add_argument("--json", action="store_true", help="print one JSON object per grasp instead of a line")
    return parser


def proposal_record(response: ProposeGrasp.Response) -> dict:
    """A ProposeGrasp response as plain values (what --json prints)."""
    position, orientation = response.pose.pose.position, response.pose.pose.orientation
    return {"success": bool(response.success), "message": response.message,
            "frame_id": response.pose.header.frame_id,
            "position": [position.x, position.y, position.z],
            "orientation": [orientation.x, orientation.y, orientation.z, orientation.w],
            "angle": response.angle, "q_value": response.q_value,
            "center_px": [float(c) for c in response.center_px],
            "rotation_index": int(response.rotation_index), "num_rotations": int(response.num_rotations),
            "explored": bool(response.explored), "model_version": int(response.model_version),
            "heightmap_stamp": [int(response.heightmap_stamp.sec), int(response.heightmap_stamp.nanosec)]}


def describe(record: dict) -> str:
    x, y, z = record["position"]
    u, v = record["center_px"]
    return (f"grasp at x={x:.4f} y={y:.4f} z={z:.4f} m in '{record['frame_id']}', jaw angle {record['angle']:.3f} "
            f"rad, Q {record['q_value']:.3f}, pixel ({u:.0f}, {v:.0f}), rotation {record['rotation_index']}/"
            f"{record['num_rotations']}, model v{record['model_version']}"
            + (" (explored)" if record["explored"] else ""))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(remove_ros_args([PROG, *argv])[1:])
    if args.count < 1 or not 0.0 <= args.epsilon <= 1.0 or not args.timeout > 0:
        print(f"{PROG}: error: need --count >= 1, 0 <= --epsilon <= 1 and --timeout > 0", file=sys.stderr)
        return 2
    rclpy.init(args=[PROG, *argv])
    node = rclpy.create_node(PROG)
    try:
        client = node.create_client(ProposeGrasp, args.service)
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f"{PROG}: error: no service {client.srv_name} within {args.timeout:g} s: is the affordance node "
                  "running, in this ROS_DOMAIN_ID and namespace?", file=sys.stderr)
            return 1
        for _ in range(args.count):
            future = client.call_async(ProposeGrasp.Request(epsilon=args.epsilon))
            rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
            if not future.done():
                client.remove_pending_request(future)
                print(f"{PROG}: error: no response from {client.srv_name} within {args.timeout:g} s",
                      file=sys.stderr)
                return 1
            record = proposal_record(future.result())
            if not record["success"]:
                print(f"{PROG}: the node refused: {record['message']}", file=sys.stderr)
                return 1
            print(json.dumps(record) if args.json else describe(record), flush=True)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
