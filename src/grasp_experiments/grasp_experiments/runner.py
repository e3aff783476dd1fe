"""One learning run: a method learns to grasp in the MuJoCo world for T attempts, logging every attempt.

The loop is `grasp_core.learning.LearningLoop` (the same attempt/episode rule, update schedule and model
publication as the node graph), with the learning preset and overrides of the RunSpec; the world never
resets by itself (`auto_reset=False`): the loop's episode rule decides.

Run directory (`<experiment>/runs/<method>/objects_NN/seed_SS/`):
    spec.json        the RunSpec and the resolved settings (written when the run starts)
    attempts.jsonl   one grasp_core.attempts.AttemptRecord per attempt, flushed as it happens (the raw log)
    attempts.csv     the same table as CSV (grasp_core.attempts.AttemptWriter writes both)
    model.safetensors (+ .json)  the final Q network (for the novel-object test)
    checkpoints/attempt_NNNN.safetensors  with checkpoint_every > 0: the Q network before attempt 1 (the warm
                     start) and after every checkpoint_every attempts (for greedy evaluation over time)
    done.json        written last, atomically: a run is finished iff this file exists
A run without done.json was interrupted; it is restarted from scratch (its directory is emptied), because
the simulator's mid-episode state is not checkpointed.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from grasp_core import checkpoint
from grasp_core.dqn import DQNLearner, warm_start
from grasp_core.attempts import AttemptWriter, read_attempts
from grasp_core.learning import LearningLoop, learning_config
from grasp_core.replay import ReplayStore
from grasp_core.workspace import VPG_SIM_WORKSPACE

from grasp_experiments.methods import build_q_network, get_method, method_profile
from grasp_experiments.mog import fit_from_world

DONE_FILE = "done.json"
CHECKPOINT_DIR = "checkpoints"
# read_attempts is grasp_core.attempts' reader, importable from here for the scripts that read runs.
__all__ = ["CHECKPOINT_DIR", "DONE_FILE", "RunSpec", "checkpoints_of", "is_finished", "read_attempts",
           "run_learning", "run_learning_settings"]


@dataclass(frozen=True)
class RunSpec:
    """What one run is: everything that changes its outcome (the experiment's settings are the same for all)."""

    method: str
    num_objects: int
    seed: int
    steps: int
    profile: str
    object_set: str = "train"
    learning: str = "default"  # grasp_core.learning preset
    overrides: tuple[str, ...] = ()  # "section.field=value" on top of the preset
    object_library: str = "random_objects"  # grasp_core.sim world: the objects ...
    exact_depth: bool = False  # ... and the camera without its D435-like depth noise

    def __post_init__(self) -> None:
        from grasp_core.sim.objects import check_object_library

        get_method(self.method)
        check_object_library(self.object_library)
        method_profile(self.method, self.profile)
        object.__setattr__(self, "overrides", tuple(self.overrides))
        learning_config(self.learning, list(self.overrides))  # refuses unknown presets and fields now
        if self.steps < 1 or self.num_objects < 1 or self.seed < 0:
            raise ValueError(f"need steps >= 1, num_objects >= 1 and seed >= 0, got {self}")

    @property
    def relative_dir(self) -> Path:
        return Path("runs") / self.method / f"objects_{self.num_objects:02d}" / f"seed_{self.seed:02d}"


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / DONE_FILE).is_file()


def run_learning_settings(run_dir: str | Path):
    """The grasp_core.learning.LearningConfig a run used (preset and overrides from its spec.json)."""
    path = Path(run_dir) / "spec.json"
    if not path.is_file():
        raise ValueError(f"{path} does not exist: {run_dir} is not a learning run folder")
    spec = json.loads(path.read_text())["spec"]
    return learning_config(spec.get("learning", "default"), list(spec.get("overrides", [])))


def checkpoints_of(run_dir: str | Path) -> dict[int, Path]:
    """The run's kept Q networks (run with checkpoint_every > 0), by the number of attempts before each."""
    paths = sorted((Path(run_dir) / CHECKPOINT_DIR).glob("attempt_*.safetensors"))
    return {int(p.stem.split("_")[1]): p for p in paths}


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)


def run_learning(spec: RunSpec, run_dir: str | Path, pretrained: str | Path | None = None,
                 imagenet_weights: str | Path | None = None, threads: int = 1, keep_replay: bool = False,
                 progress: bool = False, checkpoint_every: int = 0) -> dict:
    """Run (or restart) one learning run in `run_dir`; returns the done.json record."""
    from grasp_core.sim import GraspWorld, world_config

    run_dir = Path(run_dir)
    method = get_method(spec.method)
    if method.pretrained and pretrained is None:
        raise ValueError(f"method {spec.method} needs the pretrained Q_s checkpoint")
    _empty_run_dir(run_dir)
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(spec.seed)
    profile = method_profile(spec.method, spec.profile)
    qnet = build_q_network(spec.method, profile, imagenet_weights)
    if method.pretrained:
        warm_start(qnet, pretrained)
    config = learning_config(spec.learning, list(spec.overrides), seed=spec.seed, inference=profile.inference)
    replay = ReplayStore(run_dir / "replay")
    learner = DQNLearner(qnet, config.dqn, replay, profile=profile.name, actions=config.actions)
    workspace = VPG_SIM_WORKSPACE.with_resolution(profile.resolution)
    world = GraspWorld(world_config(spec.object_library, spec.exact_depth, num_objects=spec.num_objects,
                                    seed=spec.seed, object_set=spec.object_set, workspace=workspace,
                                    auto_reset=False))
    _write_json(run_dir / "spec.json", {"spec": asdict(spec), "profile": profile.as_dict(),
                                        "learning": config.as_dict(),
                                        "pretrained": str(pretrained) if pretrained else None,
                                        "heightmap_shape": list(workspace.shape), "threads": threads})
    started = time.perf_counter()
    try:
        roi = fit_from_world(world) if method.roi_exploration else None
        loop = LearningLoop(learner, config, world, workspace, seed=spec.seed,
                            explore_mask=roi.mask if roi is not None else None, source=str(spec.relative_dir))
        save = (lambda attempts: _save_model(run_dir / CHECKPOINT_DIR / f"attempt_{attempts:04d}.safetensors",
                                             learner, profile.name, spec)) if checkpoint_every > 0 else None
        _log_attempts(loop, spec, run_dir, progress, checkpoint_every, save)
    finally:
        world.close()
        replay.close()
    seconds = time.perf_counter() - started
    _save_model(run_dir / "model.safetensors", learner, profile.name, spec)
    if not keep_replay:
        shutil.rmtree(run_dir / "replay")
    return _finish(spec, run_dir, seconds)


def _save_model(path: Path, learner: DQNLearner, profile: str, spec: RunSpec) -> None:
    qnet = learner.qnet
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_model(path, qnet.fcn, **qnet.geometry(), profile=profile, stage="dqn",
                          version=learner.step, step=learner.step, config={"run": asdict(spec)},
                          action_space=learner.actions)


def _empty_run_dir(run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)  # interrupted before: restart cleanly
    run_dir.mkdir(parents=True)


def _log_attempts(loop: LearningLoop, spec: RunSpec, run_dir: Path, progress: bool, checkpoint_every: int = 0,
                  save: Callable[[int], None] | None = None) -> None:
    """`spec.steps` attempts of the loop, each logged as it happens (attempts.jsonl / .csv), with a progress bar;
    `save(attempts)` before the first attempt and after every `checkpoint_every`."""
    from tqdm import tqdm

    successes = 0
    if save is not None:
        save(0)
    with AttemptWriter(run_dir) as log, \
            tqdm(total=spec.steps, desc=str(spec.relative_dir), disable=not progress, dynamic_ncols=True) as bar:
        for step in range(spec.steps):
            record = loop.step()
            successes += record.success
            log.write(record)
            bar.update(1)
            bar.set_postfix(G=f"{successes / (step + 1):.2f}", eps=f"{record.epsilon:.3f}")
            if save is not None and (step + 1) % checkpoint_every == 0:
                save(step + 1)


def _finish(spec: RunSpec, run_dir: Path, seconds: float) -> dict:
    """done.json, written last: the run is finished."""
    attempts = read_attempts(run_dir)
    done = {"spec": asdict(spec), "steps": len(attempts), "successes": int(sum(a["success"] for a in attempts)),
            "seconds": round(seconds, 1), "seconds_per_step": round(seconds / len(attempts), 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(run_dir / DONE_FILE, done)
    return done
