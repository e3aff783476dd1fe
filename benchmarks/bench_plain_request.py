"""Grasps held by a plain-request client against the executor's requests (issue 23's done-criterion).

The simulated cell (grasp_sim, heightmap_node, affordance_node with `--model`, config/ur5_sim.yaml) runs as
processes; this script is a client that knows only the services. For each mode it starts from the same fresh scene
(`--objects` objects, world seed `--seed`; when the table is empty, the next seed), and repeats `--grasps` times:
wait for the heightmap taken after the last grasp, ask `/propose_grasp`, execute the proposal with
`sim/execute_grasp`, count whether it held. Modes:
- `plain`: `ProposeGrasp.Request()` (epsilon 0, no other field: what any node sends; the node uses its latest
  heightmap);
- `executor`: the request the project's executor sends with the `default` preset, greedy
  (grasp_execution.executor_node.propose_request, epsilon 0, with the heightmap; no failures excluded, as the
  plain client excludes none);
- `seed` (not run by default): `action_space = "seed"`, anywhere by each rotation's own Q, which is what a plain
  request got before the node served the model's own action space.
Neither excludes failed grasps, so a greedy miss on an unchanged scene comes back (ProposeGrasp.srv). Prints and
writes benchmarks/results/plain_request.json (or --output).

    scripts/in_env.sh python benchmarks/bench_plain_request.py --model demo_output/.../model_v249.safetensors
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "plain_request.json"
MODES = ("plain", "executor", "seed")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint the affordance node serves (.safetensors)")
    parser.add_argument("--grasps", type=int, default=40, help="grasps per mode")
    parser.add_argument("--objects", type=int, default=10, help="objects per scene")
    parser.add_argument("--seed", type=int, default=7301, help="world seed of the first scene (one the tests and "
                                                                "the demo do not use)")
    parser.add_argument("--modes", nargs="+", default=["plain", "executor"], choices=MODES,
                        help="which requests to measure")
    parser.add_argument("--output", default=str(RESULTS), help="where to write the JSON results")
    return parser.parse_args(argv)


class Client:
    """The benchmark's rclpy node: ProposeGrasp, ExecuteGrasp and ResetScene clients, and the newest heightmap."""

    def __init__(self, domain_id: int):
        import rclpy
        from grasp_interfaces.msg import Heightmap
        from grasp_interfaces.srv import ExecuteGrasp, ProposeGrasp, ResetScene
        from rclpy.executors import SingleThreadedExecutor

        from grasp_ros.qos import LATEST_QOS

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("bench_plain_request", context=self.context)
        self.propose = self.node.create_client(ProposeGrasp, "/propose_grasp")
        self.execute = self.node.create_client(ExecuteGrasp, "/sim/execute_grasp")
        self.reset = self.node.create_client(ResetScene, "/sim/reset")
        self.latest = None
        self._lock = threading.Lock()
        self.node.create_subscription(Heightmap, "/grasp/heightmap", self._on_heightmap, LATEST_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                if not self.context.ok():
                    return
                raise

    def _on_heightmap(self, msg) -> None:
        with self._lock:
            self.latest = msg

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def heightmap_after(self, after_ns: int, timeout: float = 60.0):
        from grasp_ros.conversions import stamp_ns

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                msg = self.latest
            if msg is not None and stamp_ns(msg.header.stamp) > after_ns:
                return msg
            time.sleep(0.02)
        raise TimeoutError(f"no heightmap newer than {after_ns} ns within {timeout} s")

    def call(self, client, request, timeout: float = 120.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"no service {client.srv_name}")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                client.remove_pending_request(future)
                raise TimeoutError(f"no response from {client.srv_name} within {timeout} s")
            time.sleep(0.005)
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def run_mode(client: Client, mode: str, args) -> dict:
    from grasp_interfaces.srv import ExecuteGrasp, ProposeGrasp, ResetScene

    from grasp_core.learning import learning_config
    from grasp_execution.executor_node import propose_request
    from grasp_ros.conversions import stamp_ns

    learning = learning_config("default")
    seed = args.seed
    reset = client.call(client.reset, ResetScene.Request(num_objects=args.objects, object_set="", seed=seed))
    assert reset.success, reset.message
    after_ns = client.now_ns()
    held, attempts, off_object, repeats, scenes, last = 0, [], 0, 0, 1, None
    while len(attempts) < args.grasps:
        heightmap = client.heightmap_after(after_ns)
        if mode == "plain":
            request = ProposeGrasp.Request()
        elif mode == "seed":
            request = ProposeGrasp.Request(heightmap=heightmap, action_space="seed")
        else:
            request = propose_request(learning, 0.0, heightmap)
        response = client.call(client.propose, request)
        if not response.success:
            raise RuntimeError(f"{mode}: /propose_grasp refused: {response.message}")
        if mode == "plain" and stamp_ns(response.heightmap_stamp) <= after_ns:
            raise RuntimeError("the plain request was served on a heightmap from before the last grasp")
        result = client.call(client.execute, ExecuteGrasp.Request(pose=response.pose, angle=response.angle))
        after_ns = client.now_ns()
        grasp = (tuple(response.center_px), int(response.rotation_index))
        repeats += grasp == last
        last = grasp
        off_object += response.pose.pose.position.z < -0.0001 + 0.01
        held += bool(result.grasp_success)
        attempts.append({"u": grasp[0][0], "v": grasp[0][1], "rotation": grasp[1], "q": round(response.q_value, 4),
                         "held": bool(result.grasp_success), "failure_reason": int(result.failure_reason),
                         "objects_remaining": int(result.objects_remaining), "scene_seed": seed})
        print(f"{mode} {len(attempts):3d}: pixel ({grasp[0][0]:.0f}, {grasp[0][1]:.0f}) rotation {grasp[1]:2d} "
              f"q {response.q_value:+.3f} -> {'held' if result.grasp_success else 'missed'} "
              f"({result.objects_remaining} left)", flush=True)
        if result.objects_remaining == 0:
            seed += 1
            scenes += 1
            reset = client.call(client.reset, ResetScene.Request(num_objects=args.objects, object_set="",
                                                                 seed=seed))
            assert reset.success, reset.message
            after_ns = client.now_ns()
            last = None
    return {"mode": mode, "grasps": len(attempts), "held": held, "rate": round(held / len(attempts), 4),
            "off_object": off_object, "same_as_previous": repeats, "scenes": scenes, "attempts": attempts}


def main(argv=None) -> int:
    args = parse_args(argv)
    model = Path(args.model).resolve()
    if not model.is_file():
        print(f"bench_plain_request: error: --model {model} does not exist")
        return 2
    from grasp_bringup.process_graph import NodeSpec, ProcessGraph, fresh_domain_id

    domain_id = fresh_domain_id()
    logs = Path(tempfile.mkdtemp(prefix="bench_plain_request_"))
    results = {}
    with ProcessGraph(logs, params_file=REPO / "config" / "ur5_sim.yaml", domain_id=domain_id) as graph:
        graph.start(NodeSpec("grasp_sim", "sim_node", params={"num_objects": args.objects, "seed": args.seed}))
        graph.start(NodeSpec("grasp_perception", "heightmap_node"))
        graph.start(NodeSpec("grasp_affordance", "affordance_node", params={"model_path": str(model)}))
        if not graph.wait_for_log("affordance_node", "affordance node ready", 300.0):
            print(graph.node("affordance_node").log_tail(40))
            return 1
        served = next((line for line in graph.node("affordance_node").log_path.read_text().splitlines()
                       if "model loaded" in line), "?")
        print(served, flush=True)
        client = Client(domain_id)
        try:
            for mode in args.modes:
                results[mode] = run_mode(client, mode, args)
                print(f"{mode}: {results[mode]['held']} of {results[mode]['grasps']} held", flush=True)
        finally:
            client.close()
    summary = {mode: {k: v for k, v in r.items() if k != "attempts"} for mode, r in results.items()}
    ratio = None
    if {"plain", "executor"} <= set(results) and results["executor"]["held"]:
        ratio = round(results["plain"]["held"] / results["executor"]["held"], 3)
    print(json.dumps({"summary": summary, "plain_over_executor": ratio}, indent=1))
    record = {"model": str(model), "served": served.split("]: ", 1)[-1], "objects": args.objects,
              "first_scene_seed": args.seed, "plain_over_executor": ratio, "results": results,
              "host": platform.node(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
