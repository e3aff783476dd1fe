"""`make demo`: the simulated grasp-learning graph end to end, without `ros2 launch`.

1. a simulated key-point dataset (grasp_core.sim.make_keypoint_dataset: one clicked centre per object),
2. pretraining of Q_s on it (grasp_core.pretrain, progress bar),
3. the node graph as separate processes in a fresh ROS_DOMAIN_ID (grasp_bringup.process_graph): per robot
   `sim_node`, `heightmap_node` and `executor_node` in /robotN, plus one `affordance_node` and one
   `learner_node` (warm-started from step 2); a live line shows attempts, G over the last window, epsilon
   and the model version, read from /grasp/experience and /grasp/model by this process,
4. a learning curve (windowed success G vs attempts, grasp_core.metrics) and a summary in the output folder.

Steps 1-2 are cached in the output folder (reused when their settings match). Ctrl-C stops every node and
still writes the curve and summary of the attempts so far.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grasp_bringup.preflight import DEFAULT_MIN_FREE_MB, StallWatch, check_output_folder
from grasp_bringup.launch_support import SIM_CALIBRATION_FILE, SIM_GRAPH, SIM_PARAMS_FILE
from grasp_bringup.process_graph import NodeSpec, ProcessGraph, find_repo_root

DEFAULTS = {"attempts": 250, "profile": "fast", "objects": 10, "pretrain_epochs": 8, "dataset_images": 50,
            "window": 50}


def parse_args(argv=None) -> argparse.Namespace:
    d = DEFAULTS
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="sim_demo", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--attempts", type=int, default=d["attempts"], help="grasp attempts to learn from (all robots)")
    parser.add_argument("--profile", default=d["profile"], help="network profile (grasp_core.profiles)")
    parser.add_argument("--objects", type=int, default=d["objects"], help="objects per simulated scene")
    parser.add_argument("--object-library", default="random_objects", choices=["random_objects", "blocks"],
                        help="the simulated objects: 1000 irregular random_urdfs meshes (default) or the seed's "
                             "primitive blocks")
    parser.add_argument("--exact-depth", action="store_true",
                        help="exact simulated depth instead of the D435-like noisy depth (holes, noise, 1 mm steps)")
    parser.add_argument("--robots", type=int, default=1, help="simulated robots (namespaces /robot1 ...) feeding "
                                                              "one learner")
    parser.add_argument("--pretrain-epochs", type=int, default=d["pretrain_epochs"],
                        help="epochs of the key-point pretraining of Q_s")
    parser.add_argument("--dataset-images", type=int, default=d["dataset_images"],
                        help="simulated key-point images (the seed: 50)")
    parser.add_argument("--no-pretrain", action="store_true", help="vanilla DQN: no key-point warm start")
    parser.add_argument("--viz", action="store_true", help="watch the cell in a web browser (rerun's web viewer; "
                                                           "the address is printed)")
    parser.add_argument("--viz-port", type=int, default=9090, help="port of the viewer's page (--viz); its data "
                                                                  "stream uses the next port")
    parser.add_argument("--no-bag", action="store_true", help="do not record the experiences and proposals as a "
                                                              "ROS 2 bag (MCAP) in OUTPUT/bag")
    parser.add_argument("--window", type=int, default=d["window"], help="attempts per window of the success "
                                                                        "rate G (the seed: 100)")
    parser.add_argument("--learning", default="default", help="learning preset (grasp_core.learning.PRESETS): "
                                                               "default, or seed (the seed paper's exact method)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override learning settings, e.g. dqn.gamma=0.9 publish_every=10 "
                             "(exploration.epsilon_decay_steps defaults to --attempts)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the world, the dataset and the networks")
    parser.add_argument("--output", default="demo_output", help="folder for the dataset, checkpoints, logs, "
                                                                "curve and summary")
    parser.add_argument("--params-file", default=None, help="node parameter YAML (default: config/ur5_sim.yaml)")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop learning after this long anyway")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds for the nodes to come up")
    parser.add_argument("--max-refused", type=int, default=100, help="an executor stops (and so does the demo) after "
                                                                     "this many proposals in a row were refused")
    parser.add_argument("--stall-seconds", type=float, default=60.0, help="say so when no attempt came for this long")
    parser.add_argument("--min-free-mb", type=float, default=DEFAULT_MIN_FREE_MB,
                        help="free space the output folder needs before anything starts")
    args = parser.parse_args(argv)
    from grasp_core.profiles import PROFILES
    if args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; choose one of {sorted(PROFILES)}")
    for name in ("attempts", "objects", "robots", "pretrain_epochs", "dataset_images", "window"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    from grasp_core.learning import learning_config
    if not any(s.startswith("exploration.epsilon_decay_steps=") for s in args.set):
        args.set = [f"exploration.epsilon_decay_steps={max(1, args.attempts // args.robots)}"] + list(args.set)
    try:
        learning_config(args.learning, args.set)
    except ValueError as e:
        parser.error(f"--learning / --set: {e}")
    if args.objects > 30:
        parser.error("--objects must be <= 30")
    if args.max_refused < 0 or not args.stall_seconds > 0 or args.min_free_mb < 0:
        parser.error("--max-refused and --min-free-mb must be >= 0, --stall-seconds > 0")
    return args


def say(text: str) -> None:
    print(f"\033[1m[demo]\033[0m {text}", flush=True)


# ------------------------------------------------------------------------------------------------ steps 1-2
def _cached(marker: Path, settings: dict) -> bool:
    try:
        return json.loads(marker.read_text()) == settings
    except (OSError, ValueError):
        return False


def make_dataset(out: Path, args) -> Path:
    from grasp_core.sim import make_keypoint_dataset

    folder, marker = out / "dataset", out / "dataset.settings.json"
    settings = {"images": args.dataset_images, "seed": args.seed, "object_library": args.object_library,
                "exact_depth": args.exact_depth}
    if _cached(marker, settings) and (folder / "dataset.json").is_file():
        say(f"step 1/4: key-point dataset: reusing {folder}")
        return folder
    say(f"step 1/4: rendering {args.dataset_images} simulated scenes with one key point per object -> {folder}")
    shutil.rmtree(folder, ignore_errors=True)
    make_keypoint_dataset(folder, num_images=args.dataset_images, seed=args.seed, show_progress=True,
                          object_library=args.object_library, exact_depth=args.exact_depth)
    marker.write_text(json.dumps(settings))
    return folder


def pretrain(out: Path, dataset: Path, args) -> Path | None:
    if args.no_pretrain:
        say("step 2/4: no pretraining (--no-pretrain): the learner starts from random weights")
        return None
    from grasp_core import checkpoint
    from grasp_core.pretrain import main as pretrain_main
    from grasp_core.profiles import get_profile

    path, marker = out / "pretrained" / "q_s.safetensors", out / "pretrained.settings.json"
    settings = {"profile": args.profile, "epochs": args.pretrain_epochs, "images": args.dataset_images,
                "seed": args.seed, "checkpoint_format": checkpoint.FORMAT_VERSION, "optimizer": "adam", "lr": 1e-3,
                "pad": get_profile(args.profile).pad, "object_library": args.object_library,
                "exact_depth": args.exact_depth}
    if _cached(marker, settings) and path.is_file():
        say(f"step 2/4: pretrained Q_s: reusing {path}")
        return path
    say(f"step 2/4: pretraining Q_s ({args.profile}) on the key points, {args.pretrain_epochs} epochs (KL loss)")
    path.parent.mkdir(parents=True, exist_ok=True)
    code = pretrain_main(["--dataset", str(dataset), "--out", str(path), "--profile", args.profile,
                          "--epochs", str(args.pretrain_epochs), "--seed", str(args.seed),
                          "--threads", str(os.cpu_count() or 2)])
    if code != 0:
        raise RuntimeError(f"pretraining failed (exit code {code})")
    marker.write_text(json.dumps(settings))
    return path


# ------------------------------------------------------------------------------------------------ step 3
def graph_specs(args, out: Path, pretrained: Path | None) -> list[NodeSpec]:
    """launch_support.SIM_GRAPH's nodes (those of launch/sim_ur5.launch.py) with the demo's settings: the shared
    nodes once, the others in each robot's namespace; plus the viewer and the bag recorder when asked for."""
    from grasp_core.profiles import get_profile

    profile = get_profile(args.profile)
    learning = {"learning": args.learning, "learning_overrides": " ".join(args.set)}
    shared = {
        "learner_node": {
            "profile": args.profile, "replay_dir": str(out / "learner" / "replay"),
            "checkpoint_dir": str(out / "learner" / "checkpoints"), "pretrained_checkpoint": str(pretrained or ""),
            "seed": args.seed, "torch_threads": 1, **learning},
        "affordance_node": {"profile": args.profile, "seed": args.seed, "torch_threads": 1},
    }

    def per_robot(executable: str, r: int) -> dict:
        return {
            "sim_node": {"num_objects": args.objects, "seed": args.seed + r, "object_library": args.object_library,
                         "depth_noise": not args.exact_depth},
            "heightmap_node": {"resolution": profile.resolution, "use_tf": False,
                               "calibration_file": str(find_repo_root() / "config" / SIM_CALIBRATION_FILE)},
            "executor_node": {"propose_service": "/propose_grasp", **learning, "window": args.window,
                              "csv_path": str(out / f"attempts_robot{r}.csv"),
                              "max_refused_proposals": args.max_refused},
        }[executable]

    specs = [NodeSpec(n.package, n.executable, params=shared[n.executable]) for n in SIM_GRAPH if not n.per_robot]
    if args.viz:  # grasp_bringup.viewer, on robot 1's heightmaps
        specs.append(NodeSpec("grasp_bringup", "viewer", params={
            "namespace": "/robot1", "web_port": args.viz_port, "grpc_port": args.viz_port + 1, "window": args.window}))
    if not args.no_bag:  # experiences, proposals (propose_grasp's service events) and model versions
        specs.append(NodeSpec("grasp_ros", "bag_recorder", params={"output": str(out / "bag")}))
    for r in range(1, args.robots + 1):
        specs += [NodeSpec(n.package, n.executable, f"/robot{r}", params=per_robot(n.executable, r))
                  for n in SIM_GRAPH if n.per_robot]
    return specs


@dataclass
class Progress:
    """What the demo process sees on /grasp/experience and /grasp/model."""

    rewards: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # grasp_core.attempts.AttemptRecord of every attempt
    epsilon: float = float("nan")
    model_version: int | None = None
    model_updates: int = 0
    versions: list = field(default_factory=list)  # (attempts when announced, version)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Monitor:
    """A small rclpy node in this process, spun by a thread, recording attempts and model versions."""

    def __init__(self, domain_id: int):
        import rclpy
        from grasp_interfaces.msg import GraspExperience, ModelVersion
        from rclpy.executors import SingleThreadedExecutor

        from grasp_ros.qos import EXPERIENCE_QOS, MODEL_QOS

        self.progress = Progress()
        from rclpy.signals import SignalHandlerOptions

        self.context = rclpy.Context()
        # No rclpy signal handler: Ctrl-C stays a KeyboardInterrupt in the main thread, which stops the graph.
        rclpy.init(context=self.context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("demo_monitor", context=self.context)
        self.node.create_subscription(GraspExperience, "/grasp/experience", self._on_experience, EXPERIENCE_QOS)
        self.node.create_subscription(ModelVersion, "/grasp/model", self._on_model, MODEL_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - the context went away while waiting
                return

    def _on_experience(self, msg) -> None:
        from grasp_ros.conversions import attempt_record

        p = self.progress
        with p.lock:
            p.rewards.append(int(msg.reward > 0.5))
            p.epsilon = float(msg.epsilon)
            p.rows.append(attempt_record(msg))

    def _on_model(self, msg) -> None:
        p = self.progress
        with p.lock:
            p.model_version, p.model_updates = int(msg.version), int(msg.updates)
            p.versions.append((len(p.rewards), int(msg.version)))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=5.0)


def live_line(p: Progress, target: int, window: int, started: float) -> str:
    with p.lock:
        n, recent = len(p.rewards), p.rewards[-window:]
        eps, version, updates = p.epsilon, p.model_version, p.model_updates
    g = f"{sum(recent) / len(recent):.2f}" if recent else "-"
    elapsed = time.monotonic() - started
    rate = f"{elapsed / n:.1f} s/attempt" if n else "waiting for the first attempt"
    model = "-" if version is None else f"v{version} ({updates} updates)"
    return (f"attempts {n}/{target} | G(last {min(window, n)}) {g} | epsilon {eps:.3f} | model {model} | "
            f"{rate} | {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}")


def run_graph(args, out: Path, pretrained: Path | None, progress_holder: list) -> dict:
    root = find_repo_root()
    params_file = Path(args.params_file) if args.params_file else root / "config" / SIM_PARAMS_FILE
    if not params_file.is_file():
        say(f"no parameter file {params_file}: the nodes use their defaults plus the demo's settings")
        params_file = None
    for folder in ("learner", "logs", "bag"):
        shutil.rmtree(out / folder, ignore_errors=True)  # a new run: the learner must not resume an old one
    for stale in [*out.glob("attempts_robot*.csv"), *out.glob("attempts_robot*.jsonl")]:
        stale.unlink()
    specs = graph_specs(args, out, pretrained)
    info = {"exit_codes": {}, "stopped_because": ""}
    with ProcessGraph(out / "logs", params_file=params_file) as graph:
        say(f"step 3/4: starting {len(specs)} nodes in ROS_DOMAIN_ID={graph.domain_id} (logs: {out / 'logs'})")
        monitor = Monitor(graph.domain_id)
        # Ctrl-C must reach this loop even if we were started with SIGINT ignored (an inherited SIG_IGN stays).
        signal.signal(signal.SIGINT, _interrupt)
        progress_holder.append(monitor.progress)
        try:
            viewers = [spec for spec in specs if spec.executable == "viewer"]
            for spec in viewers:  # up before the first attempt, so that it shows every one
                from grasp_bringup.viewer import READY_MESSAGE
                waited_from = time.monotonic()
                graph.start(spec)
                if graph.wait_for_log(spec.label, READY_MESSAGE, args.startup_timeout):
                    info["viewer_ready_s"] = round(time.monotonic() - waited_from, 1)
                    say(f"viewer ready after {info['viewer_ready_s']:g} s")
                else:
                    node = graph.node(spec.label)
                    state = "running" if node.alive() else f"exited with {node.process.returncode}"
                    say(f"warning: the viewer did not say it was ready within {args.startup_timeout:g} s ({state}); "
                        f"its log {node.log_path} ends:\n{node.log_tail(15)}")
            for spec in specs:
                if spec not in viewers:
                    graph.start(spec)
            if args.viz:
                from grasp_bringup.viewer import viewer_url
                say(f"viewer: open {viewer_url(args.viz_port, args.viz_port + 1)} in a web browser")
            started = time.monotonic()
            deadline = started + 60.0 * args.max_minutes
            last_print = 0.0
            stall = StallWatch(args.stall_seconds)
            while True:
                p = monitor.progress
                if len(p.rewards) >= args.attempts:
                    info["stopped_because"] = f"reached {args.attempts} attempts"
                    break
                dead = graph.dead()
                if dead:
                    names = ", ".join(f"{n.label} (exit {n.process.returncode})" for n in dead)
                    tails = "\n".join(f"--- {n.label}: {n.log_path}\n{n.log_tail(15)}" for n in dead)
                    raise RuntimeError(f"node(s) stopped: {names}\n{tails}")
                if not p.rewards and time.monotonic() - started > args.startup_timeout:
                    raise RuntimeError(f"no grasp attempt within {args.startup_timeout:.0f} s of starting the "
                                       f"nodes; see the logs in {out / 'logs'}")
                if time.monotonic() > deadline:
                    info["stopped_because"] = f"--max-minutes {args.max_minutes} reached"
                    break
                notice = stall.check(len(p.rewards), graph.nodes)
                if notice:
                    print(flush=True)
                    say(notice)
                line = live_line(p, args.attempts, args.window, started)
                if sys.stdout.isatty():
                    print(f"\033[2K{line}", end="\r", flush=True)
                elif time.monotonic() - last_print >= 15.0:  # a log file: one line every 15 s
                    print(line, flush=True)
                    last_print = time.monotonic()
                time.sleep(1.0)
            print(flush=True)
            info["learning_seconds"] = round(time.monotonic() - started, 1)
        finally:
            print(flush=True)
            say("stopping the nodes")
            info["exit_codes"] = graph.stop()
            monitor.close()
    return info


# ------------------------------------------------------------------------------------------------ step 4
def write_results(out: Path, args, progress, info: dict, timings: dict) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from grasp_core.attempts import write_attempts
    from grasp_core.metrics import windowed_success

    with progress.lock:
        rewards, rows, versions = list(progress.rewards), list(progress.rows), list(progress.versions)
    write_attempts(out / "attempts.csv", rows)  # and attempts.jsonl: the shared attempt log
    n = len(rewards)
    with progress.lock:
        updates = progress.model_updates
    summary = {"attempts": n, "successes": int(sum(rewards)), "profile": args.profile, "objects": args.objects,
               "robots": args.robots, "warm_start": not args.no_pretrain, "window": args.window,
               "learning": args.learning, "learning_overrides": args.set,
               "final_model_version": versions[-1][1] if versions else None,
               "learner_updates_at_end": updates, "untrained_at_end": n - updates, **info, **timings}
    if n:
        g = windowed_success(rewards, window=args.window, partial="so_far")
        w = min(args.window, n)
        summary.update({"success_rate": round(float(np.mean(rewards)), 3),
                        "G_first_window": round(float(np.mean(rewards[:w])), 3),
                        "G_last_window": round(float(np.mean(rewards[-w:])), 3), "G_max": round(float(g.max()), 3)})
        if n >= args.window:  # the lowest windowed G after the first full window (does learning wear it down?)
            summary["G_min_after_first_window"] = round(float(g[args.window - 1:].min()), 3)
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
        x = np.arange(1, n + 1)
        full = x >= args.window  # before that, G covers the attempts so far (noisy: shown faint)
        ax.plot(x[~full | (x == args.window)], g[~full | (x == args.window)], color="tab:blue", lw=1, alpha=0.35)
        ax.plot(x[full], g[full], color="tab:blue", lw=2,
                label=f"G = successes / attempts over the last {args.window} (faint: fewer attempts so far)")
        ax.scatter(np.arange(1, n + 1), rewards, s=6, color="gray", alpha=0.35, label="attempt outcome (1 = held)")
        eps = [r.epsilon for r in rows]
        ax.plot(np.arange(1, n + 1), eps, color="tab:orange", lw=1, ls="--", label="epsilon")
        for attempt, version in versions[1:]:
            ax.axvline(attempt, color="tab:green", alpha=0.08)
        ax.set_xlabel("grasp attempts")
        ax.set_ylabel("grasp success rate G")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(0, max(n, 1))
        start = "warm start from key-point pretraining" if not args.no_pretrain else "random init (vanilla)"
        ax.set_title(f"Simulated grasp learning ({args.profile}, {args.objects} objects, {start})")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8)  # below: never over G
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png")
        plt.close(fig)
        summary["curve"] = str(out / "learning_curve.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the nodes like Ctrl-C does
    args = parse_args(argv)
    try:
        out = check_output_folder(args.output, args.min_free_mb)  # before any work
    except RuntimeError as e:
        say(f"error: {e}")
        return 2
    timings: dict = {}
    holder: list = []
    info: dict = {}
    interrupted = False
    try:
        t0 = time.monotonic()
        dataset = make_dataset(out, args)
        timings["dataset_seconds"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        pretrained = pretrain(out, dataset, args)
        timings["pretrain_seconds"] = round(time.monotonic() - t0, 1)
        info = run_graph(args, out, pretrained, holder)
    except KeyboardInterrupt:
        interrupted = True
        print(flush=True)
        say("interrupted: every node has been stopped")
        info = {"stopped_because": "interrupted (Ctrl-C)"}
    except (RuntimeError, OSError, ValueError) as e:  # OSError: e.g. the disk filled up on the way
        say(f"error: {e}" + (" (is the disk full, or the output folder no longer writable?)"
                             if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) else ""))
        if not holder:
            return 1
        info = {"stopped_because": f"error: {e}".splitlines()[0]}
    if not holder:
        return 130 if interrupted else 1
    say("step 4/4: learning curve and summary")
    try:
        summary = write_results(out, args, holder[0], info, timings)
    except OSError as e:
        say(f"error: cannot write the results in {out}: {e} (is the disk full?)")
        return 1
    if summary["attempts"]:
        first = min(args.window, summary["attempts"])
        say(f"{summary['attempts']} attempts, {summary['successes']} successes; G over the first {first}: "
            f"{summary['G_first_window']:.2f}, over the last: {summary['G_last_window']:.2f} "
            f"(model v{summary['final_model_version']}, {summary['untrained_at_end']} attempts not yet trained on)")
        say(f"curve: {out / 'learning_curve.png'}; summary: {out / 'summary.json'}; attempts: {out / 'attempts.csv'}")
    else:
        say(f"no attempt was made; see the node logs in {out / 'logs'}")
    return 130 if interrupted else (0 if summary["attempts"] else 1)


if __name__ == "__main__":
    sys.exit(main())
