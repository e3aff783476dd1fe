"""Latency of /propose_grasp under load: N calls from C concurrent client processes against one affordance node.

The node runs as its own process (installed executable, `fast` profile by default, an untrained model: the
weights do not change the cost); each client is a separate process with its own rclpy node, sending the same
simulated-scene heightmap (rendered by grasp_core.sim, projected at the profile's resolution) in every request,
so the timing covers DDS transport of the heightmap both ways, decoding, inference over all rotations,
the choice of the grasp and the response. Prints p50/p90/p99 latency, throughput, failures and the node's CPU
seconds per call (user + system, all its threads: less moved by other work on the machine than the wall times);
writes benchmarks/results/propose_grasp.json (or --output).

    scripts/in_env.sh python benchmarks/bench_propose_grasp.py [--calls 1000] [--clients 4] [--profile fast] \
        [--max-batch 4]

Compare settings (e.g. --max-batch 1 against 4) as ratios of runs made back to back: the load of other work on the
machine moves every number.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "propose_grasp.json"


def scene_heightmap(resolution: float, seed: int = 0):
    """A simulated scene (10 objects) as colour + depth heightmaps at `resolution` m/px."""
    from grasp_core.heightmap import depth_image_from_16uc1, make_heightmap
    from grasp_core.sim import GraspWorld, SimConfig

    world = GraspWorld(SimConfig(num_objects=10, seed=seed))
    try:
        frame = world.render()
        workspace = world.workspace.with_resolution(resolution)
        color, depth = make_heightmap(frame.color, depth_image_from_16uc1(frame.depth_mm), frame.intrinsics.K,
                                      frame.pose, workspace)
    finally:
        world.close()
    return color, depth, workspace


def client_worker(index: int, calls: int, heightmap_file: str, domain_id: int, start_at: float, queue) -> None:
    """One client process: wait for the service, then `calls` sequential requests; report latencies."""
    import rclpy
    from grasp_interfaces.srv import ProposeGrasp

    from grasp_core.workspace import WorkspaceLimits
    from grasp_ros.conversions import heightmap_to_msg

    data = np.load(heightmap_file)
    workspace = WorkspaceLimits(*[float(v) for v in data["workspace"]])
    heightmap = heightmap_to_msg(data["color"], data["depth"], workspace)
    heightmap.header.frame_id = "world"
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node(f"bench_client_{index}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    client = node.create_client(ProposeGrasp, "/propose_grasp")
    latencies, failures, messages = [], 0, {}
    try:
        if not client.wait_for_service(timeout_sec=120.0):
            queue.put({"index": index, "error": "no /propose_grasp within 120 s"})
            return
        while time.time() < start_at:  # all clients start together
            time.sleep(0.001)
        for _ in range(calls):
            request = ProposeGrasp.Request(epsilon=0.0, heightmap=heightmap)
            t0 = time.perf_counter()
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=60.0)
            elapsed = time.perf_counter() - t0
            response = future.result() if future.done() else None
            if response is None or not response.success:
                failures += 1
                why = "timeout" if response is None else response.message
                messages[why] = messages.get(why, 0) + 1
                if response is None:
                    client.remove_pending_request(future)
            else:
                latencies.append(elapsed)
        queue.put({"index": index, "latencies": latencies, "failures": failures, "messages": messages})
    except Exception as e:  # noqa: BLE001 - report instead of leaving the parent waiting
        queue.put({"index": index, "error": f"{type(e).__name__}: {e}"})
    finally:
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile_ms(values, q) -> float:
    return round(1e3 * float(np.percentile(values, q)), 1) if len(values) else float("nan")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="total calls (split over the clients)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent service clients")
    parser.add_argument("--profile", default="fast", help="network profile of the affordance node")
    parser.add_argument("--torch-threads", type=int, default=0, help="the node's torch threads (0: default)")
    parser.add_argument("--max-batch", type=int, default=4,
                        help="the node's max_batch: most waiting requests run through the network together")
    parser.add_argument("--output", default=str(RESULTS), help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.calls < args.clients or args.clients < 1:
        parser.error("need --clients >= 1 and --calls >= --clients")
    if args.max_batch < 1:
        parser.error("need --max-batch >= 1")
    return args


def save_heightmap(path: Path, color: np.ndarray, depth: np.ndarray, ws) -> None:
    """The scene the clients send, in a file the spawned client processes load."""
    np.savez(path, color=color, depth=depth,
             workspace=np.array([ws.x_min, ws.x_max, ws.y_min, ws.y_max, ws.z_min, ws.z_max, ws.resolution]))


def run_clients(per_client: list[int], heightmap_file: Path, domain_id: int) -> tuple[list[dict], float] | None:
    """Start one client process per entry of `per_client` (its number of calls); their results and the wall time
    from the common start, or None when every client died without a result."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 8.0  # time for the client processes to import and discover the service
    workers = [ctx.Process(target=client_worker, args=(i, n, str(heightmap_file), domain_id, start_at, queue))
               for i, n in enumerate(per_client)]
    for w in workers:
        w.start()
    results = []
    while len(results) < len(workers):
        try:
            results.append(queue.get(timeout=1.0))
        except Empty:
            if not any(w.is_alive() for w in workers) and queue.empty():
                print("every client process exited without a result (see the traceback above)")
                return None
    wall = time.time() - start_at
    for w in workers:
        w.join(timeout=30)
    return results, wall


def summarise(args, profile, shape, results: list[dict], wall: float, node_log: str, load_at_start,
              node_cpu: float) -> dict:
    """The JSON record of the run: latency percentiles, throughput, failures and the machine."""
    latencies = np.concatenate([r["latencies"] for r in results]) if results else np.zeros(0)
    messages: dict = {}
    for r in results:
        for k, v in r["messages"].items():
            messages[k] = messages.get(k, 0) + v
    return {
        "calls": args.calls, "clients": args.clients, "profile": profile.name, "trunk": profile.trunk,
        "num_rotations": profile.num_rotations, "heightmap_px": list(shape),
        "successes": int(len(latencies)), "failures": int(sum(r["failures"] for r in results)),
        "failure_messages": messages,
        "latency_ms": {"p50": percentile_ms(latencies, 50), "p90": percentile_ms(latencies, 90),
                       "p99": percentile_ms(latencies, 99), "mean": round(1e3 * float(latencies.mean()), 1),
                       "max": round(1e3 * float(latencies.max()), 1)},
        "throughput_per_s": round(len(latencies) / wall, 2), "wall_seconds": round(wall, 1),
        "node_cpu_seconds": round(node_cpu, 2), "node_cpu_ms_per_call": round(1e3 * node_cpu / args.calls, 1),
        "torch_threads": args.torch_threads or "default", "max_batch": args.max_batch, "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_at_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
        "node_stats_lines": [line.split("]: ", 1)[-1] for line in node_log.splitlines() if "last 10 s" in line][-3:],
    }


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout`/kill: still stop the node process on the way out
    args = parse_args(argv)

    from grasp_bringup.process_graph import NodeSpec, ProcessGraph, fresh_domain_id
    from grasp_core.profiles import get_profile

    profile = get_profile(args.profile)
    color, depth, workspace = scene_heightmap(profile.resolution)
    tmp = Path(tempfile.mkdtemp(prefix="bench_propose_"))
    heightmap_file = tmp / "heightmap.npz"
    save_heightmap(heightmap_file, color, depth, workspace)
    domain_id = fresh_domain_id()
    per_client = [args.calls // args.clients + (1 if i < args.calls % args.clients else 0)
                  for i in range(args.clients)]
    print(f"bench_propose_grasp: {args.calls} calls from {args.clients} client processes, profile {profile.name} "
          f"({profile.trunk}, {profile.num_rotations} rotations, {depth.shape[1]}x{depth.shape[0]} px), "
          f"max_batch {args.max_batch}, ROS_DOMAIN_ID={domain_id}", flush=True)
    with ProcessGraph(tmp / "logs", domain_id=domain_id) as graph:
        node = graph.start(NodeSpec("grasp_affordance", "affordance_node", params={
            "profile": profile.name, "allow_untrained": True, "torch_threads": args.torch_threads,
            "max_batch": args.max_batch}))
        if not graph.wait_for_log(node.label, "affordance node ready", 300.0):  # slow imports on a busy machine
            print(node.log_tail(30))
            return 1
        load_at_start = os.getloadavg()
        cpu_before = cpu_seconds(node.process.pid)  # start-up and warm-up left out
        ran = run_clients(per_client, heightmap_file, domain_id)
        node_cpu = cpu_seconds(node.process.pid) - cpu_before
        if ran is None:
            return 1
        results, wall = ran
        node_log = node.log_path.read_text(errors="replace")
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        print("client errors:", errors)
        return 1
    result = summarise(args, profile, depth.shape, results, wall, node_log, load_at_start, node_cpu)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    lat = result["latency_ms"]
    print(f"latency p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms (mean {lat['mean']}, max "
          f"{lat['max']}); throughput {result['throughput_per_s']} calls/s; failures {result['failures']}/{args.calls}")
    print(f"node CPU {result['node_cpu_ms_per_call']} ms per call")
    print(f"wrote {out}")
    return 0 if result["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
