"""One learning run: a method learns to grasp in the MuJoCo world for T attempts, logging every attempt.

The loop (VPG's order, in-process, no ROS): look at the scene, pick a grasp epsilon-greedily from Q(s), run it
in the simulator, observe s', then one DQN update (`grasp_core.dqn.DQNLearner`: TD target from Q(s'),
smooth L1 on the executed pixel, one prioritised-replay step). Q(s') is computed once and serves both the
update's target and the next action (as VPG's main loop does), so the next action sees the network from
before the update on the last grasp; this saves one 16-rotation forward pass per attempt.

Run directory (`<experiment>/runs/<method>/objects_NN/seed_SS/`):
    spec.json        the RunSpec and the resolved settings (written when the run starts)
    attempts.jsonl   one JSON object per attempt, flushed as it happens (the raw log)
    attempts.csv     the same table, written when the run finishes
    model.safetensors (+ .json)  the final Q network (for the novel-object test)
    done.json        written last, atomically: a run is finished iff this file exists
A run without done.json was interrupted; it is restarted from scratch (its directory is emptied), because
the simulator's mid-episode state is not checkpointed.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from grasp_core import checkpoint
from grasp_core.dqn import DQNConfig, DQNLearner, select_action, warm_start
from grasp_core.replay import Experience, ReplayStore
from grasp_core.workspace import VPG_SIM_WORKSPACE

from grasp_experiments.methods import build_q_network, get_method, method_profile
from grasp_experiments.mog import fit_from_world

DONE_FILE = "done.json"
LOG_FILE = "attempts.jsonl"
LOG_FIELDS = ("step", "success", "reward", "explored", "epsilon", "rotation", "u", "v", "angle", "predicted_q",
              "target", "loss", "replayed", "failure_reason", "grasped_object", "objects_remaining",
              "scene_reset", "roi_pixels", "seconds")


@dataclass(frozen=True)
class RunSpec:
    """What one run is: everything that changes its outcome (the experiment's settings are the same for all)."""

    method: str
    num_objects: int
    seed: int
    steps: int
    profile: str
    object_set: str = "train"

    def __post_init__(self) -> None:
        get_method(self.method)
        method_profile(self.method, self.profile)
        if self.steps < 1 or self.num_objects < 1 or self.seed < 0:
            raise ValueError(f"need steps >= 1, num_objects >= 1 and seed >= 0, got {self}")

    @property
    def relative_dir(self) -> Path:
        return Path("runs") / self.method / f"objects_{self.num_objects:02d}" / f"seed_{self.seed:02d}"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / DONE_FILE).is_file()


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)


def read_attempts(run_dir: str | Path) -> list[dict]:
    """The per-attempt records of a run, in order."""
    path = Path(run_dir) / LOG_FILE
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_learning(spec: RunSpec, run_dir: str | Path, pretrained: str | Path | None = None,
                 imagenet_weights: str | Path | None = None, threads: int = 1, keep_replay: bool = False,
                 progress: bool = False) -> dict:
    """Run (or restart) one learning run in `run_dir`; returns the done.json record."""
    from tqdm import tqdm

    from grasp_core.sim import GraspWorld, SimConfig

    run_dir = Path(run_dir)
    method = get_method(spec.method)
    if method.pretrained and pretrained is None:
        raise ValueError(f"method {spec.method} needs the pretrained Q_s checkpoint")
    if run_dir.exists():
        shutil.rmtree(run_dir)  # interrupted before: restart cleanly
    run_dir.mkdir(parents=True)
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(spec.seed)
    profile = method_profile(spec.method, spec.profile)
    qnet = build_q_network(spec.method, profile, imagenet_weights)
    if method.pretrained:
        warm_start(qnet, pretrained)
    config = DQNConfig(seed=spec.seed, inference=profile.inference)
    replay_dir = run_dir / "replay"
    replay = ReplayStore(replay_dir)
    learner = DQNLearner(qnet, config, replay, profile=profile.name)
    workspace = VPG_SIM_WORKSPACE.with_resolution(profile.resolution)
    world = GraspWorld(SimConfig(num_objects=spec.num_objects, seed=spec.seed, object_set=spec.object_set,
                                 workspace=workspace))
    _write_json(run_dir / "spec.json", {"spec": asdict(spec), "profile": profile.as_dict(), "dqn": config.as_dict(),
                                        "pretrained": str(pretrained) if pretrained else None,
                                        "heightmap_shape": list(workspace.shape), "threads": threads})
    started = time.perf_counter()
    try:
        roi = fit_from_world(world) if method.roi_exploration else None
        color, depth = world.heightmap()
        q = learner.q_maps(color, depth)
        successes = 0
        with open(run_dir / LOG_FILE, "w", encoding="utf-8") as log, \
                tqdm(total=spec.steps, desc=str(spec.relative_dir), disable=not progress, dynamic_ncols=True) as bar:
            for step in range(spec.steps):
                t0 = time.perf_counter()
                epsilon = learner.epsilon
                roi_pixels = None
                if roi is not None:  # MoG: random grasps only inside the regions of interest
                    mask = roi.mask(color, depth)
                    roi_pixels = int(mask.sum())  # 0: nothing detected, explore anywhere (logged)
                    action = select_action(q, epsilon, learner.rng, mask if roi_pixels else None)
                    if not action.explored:
                        action = select_action(q, 0.0, learner.rng)
                else:
                    action = select_action(q, epsilon, learner.rng)
                x, y, _ = workspace.pixel_to_point(action.u, action.v)
                angle = qnet.angle(action.rotation)
                result = world.execute_grasp(x, y, angle)
                next_color, next_depth = world.heightmap()
                terminal = bool(result.scene_reset)
                experience = Experience(
                    id=f"{step:06d}", source=str(spec.relative_dir), attempt=step, color_hm=color, depth_hm=depth,
                    rotation_index=action.rotation, num_rotations=qnet.num_rotations, pixel=(action.u, action.v),
                    reward=float(result.grasp_success), terminal=terminal,
                    next_color_hm=None if terminal else next_color, next_depth_hm=None if terminal else next_depth,
                    model_version=learner.step, epsilon=epsilon, explored=action.explored, predicted_q=action.q,
                    failure_reason=int(result.failure_reason))
                next_q = learner.q_maps(next_color, next_depth)
                stats = learner.update(experience, next_q_maps=None if terminal else next_q)
                successes += int(result.grasp_success)
                record = {"step": step, "success": int(result.grasp_success), "reward": experience.reward,
                          "explored": action.explored, "epsilon": round(epsilon, 6), "rotation": action.rotation,
                          "u": action.u, "v": action.v, "angle": round(angle, 6), "predicted_q": round(action.q, 6),
                          "target": round(stats.target, 6), "loss": round(stats.loss, 6),
                          "replayed": stats.replayed_index, "failure_reason": int(result.failure_reason),
                          "grasped_object": result.grasped_object, "objects_remaining": result.objects_remaining,
                          "scene_reset": terminal, "roi_pixels": roi_pixels,
                          "seconds": round(time.perf_counter() - t0, 4)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                color, depth, q = next_color, next_depth, next_q
                bar.update(1)
                bar.set_postfix(G=f"{successes / (step + 1):.2f}", eps=f"{epsilon:.3f}")
    finally:
        world.close()
        replay.close()
    seconds = time.perf_counter() - started
    checkpoint.save_model(run_dir / "model.safetensors", qnet.fcn, num_rotations=qnet.num_rotations, zoom=qnet.zoom,
                          back_rotation=qnet.back_rotation, profile=profile.name, stage="dqn", version=learner.step,
                          step=learner.step, config={"run": asdict(spec)})
    attempts = read_attempts(run_dir)
    with open(run_dir / "attempts.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(attempts)
    if not keep_replay:
        shutil.rmtree(replay_dir)
    done = {"spec": asdict(spec), "steps": len(attempts), "successes": int(sum(a["success"] for a in attempts)),
            "seconds": round(seconds, 1), "seconds_per_step": round(seconds / len(attempts), 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(run_dir / DONE_FILE, done)
    return done
