"""The novel-object test (seed Table II): trained models grasp 10 unseen shapes, R rounds x A attempts each.

Each round is a fresh scene of the `novel` object set (10 shapes none of which is in the training set), the
same scenes for every method (round r uses world seed `base_seed + r`). Round r uses the final model of the
method's seed r mod S (S = seeds that finished), so 8 rounds over 2 seeds test each model 4 times. The
policy is greedy (epsilon 0) and does not learn during the test; it chooses grasps as its runs did (their learning
settings: the action space, and failed grasps excluded until the scene changes, so a greedy policy does not
repeat one failure). G of a round = successes / attempts.
With `include_pretrained` the KL-pretrained Q_s itself is tested too (`pretrained_qs`: the warm start of `ours`
before any DQN update), which separates what pretraining gives from what the DQN then does with it.
`novel.json` keeps the methods tested earlier with the same settings, so methods can be tested one at a time.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from grasp_core import checkpoint
from grasp_core.action_space import choose_grasp
from grasp_core.learning import AttemptRules, LearningConfig, learning_config
from grasp_core.rotation import RotatingQNetwork
from grasp_core.workspace import VPG_SIM_WORKSPACE

from grasp_experiments.methods import method_profile
from grasp_experiments.pretraining import kl_checkpoint
from grasp_experiments.runner import DONE_FILE, run_learning_settings

NOVEL_FILE = "novel.json"
PRETRAINED_KEY = "pretrained_qs"  # the KL-pretrained Q_s alone, before any DQN update (with include_pretrained)


def trained_models(experiment_dir: str | Path, method: str, objects: int) -> list[Path]:
    """Final models of the finished runs of (method, objects), by seed."""
    pattern = f"runs/{method}/objects_{objects:02d}/seed_*/{DONE_FILE}"
    return [done.parent / "model.safetensors" for done in sorted(Path(experiment_dir).glob(pattern))]


def run_learning_config(experiment_dir: str | Path, method: str, objects: int) -> LearningConfig:
    """The learning settings the method's runs used (their spec.json); the default preset if none finished."""
    models = trained_models(experiment_dir, method, objects)
    return run_learning_settings(models[0].parent) if models else learning_config("default")


def novel_round_shapes(library: str, round_index: int, num_novel: int, base_seed: int) -> list[str] | None:
    """The objects of a test round's first scene. random_objects: consecutive slices of a fixed shuffle of the 100
    held-out objects, so 100 / num_novel rounds start from each of them once (10 rounds of 10 by default; a round
    that clears its scene goes on with novel objects the world draws); blocks: None (drawn)."""
    from grasp_core.sim.objects import shape_names

    if library == "blocks":
        return None
    names = shape_names(library, "novel")
    order = np.random.default_rng(base_seed).permutation(len(names))
    start = (round_index * num_novel) % len(names)
    return [names[k] for k in np.roll(order, -start)[:num_novel]]


def run_novel_test(experiment_dir: str | Path, methods: list[str], objects: int, rounds: int = 8,
                   attempts: int = 20, num_novel: int = 10, base_seed: int = 50_000, threads: int = 2,
                   progress: bool = True, include_pretrained: bool = False) -> dict:
    """Run the test for each method that has trained models; writes and returns `<experiment>/novel.json`."""
    from tqdm import tqdm

    from grasp_core.sim import GraspWorld, world_config

    if rounds < 1 or attempts < 1:
        raise ValueError(f"need rounds >= 1 and attempts >= 1, got {rounds}, {attempts}")
    torch.set_num_threads(max(1, threads))
    experiment_dir = Path(experiment_dir)
    recorded = json.loads((experiment_dir / "experiment.json").read_text())
    profile_name = recorded["profile"]
    # experiments made before the object libraries ran in the blocks world with exact depth
    library, exact_depth = recorded.get("object_library", "blocks"), recorded.get("exact_depth", True)
    results, timings = {}, {}
    entries = [(m, m) for m in methods] + ([(PRETRAINED_KEY, "ours")] if include_pretrained else [])
    for method, network_of in entries:
        started = time.perf_counter()
        if method == PRETRAINED_KEY:
            models = [kl_checkpoint(experiment_dir, profile_name)]
        else:
            models = trained_models(experiment_dir, method, objects)
        if not models:
            raise ValueError(f"no finished {method} runs with {objects} objects in {experiment_dir}")
        profile = method_profile(network_of, profile_name)
        workspace = VPG_SIM_WORKSPACE.with_resolution(profile.resolution)
        networks: list[RotatingQNetwork] = [checkpoint.load_q_network(m)[0].eval() for m in models]
        config = run_learning_config(experiment_dir, network_of, objects)
        world = GraspWorld(world_config(library, exact_depth, num_objects=num_novel, object_set="novel",
                                        seed=base_seed, workspace=workspace))
        rng = np.random.default_rng(base_seed)
        per_round = []
        try:
            for r in tqdm(range(rounds), desc=f"novel {method}", disable=None if progress else True):
                qnet = networks[r % len(networks)]
                world.reset(num_objects=num_novel, object_set="novel", seed=base_seed + r,
                            shapes=novel_round_shapes(library, r, num_novel, base_seed))
                successes = 0
                rules = AttemptRules(config, qnet.num_rotations, workspace.resolution)  # failed-grasp exclusion
                color, depth = world.heightmap()
                for _ in range(attempts):
                    action = choose_grasp(qnet.predict(color, depth, profile.inference), depth,
                                          workspace.resolution, config.actions, 0.0, rng,
                                          excluded=rules.excluded(*depth.shape))
                    x, y, _ = workspace.pixel_to_point(action.u, action.v)
                    result = world.execute_grasp(x, y, qnet.angle(action.rotation))
                    successes += int(result.grasp_success)
                    next_color, next_depth = world.heightmap()
                    if result.scene_reset:  # the world refilled itself (auto_reset): a new scene
                        rules.scene_was_reset()
                    else:
                        rules.after_attempt(action.rotation, action.u, action.v, bool(result.grasp_success), None,
                                            depth, next_depth)
                    color, depth = next_color, next_depth
                per_round.append(successes / attempts)
        finally:
            world.close()
        results[method] = {"rounds": per_round, "mean": float(np.mean(per_round)), "learning": config.name,
                           "actions": dataclasses.asdict(config.actions),
                           "std": float(np.std(per_round, ddof=1)) if len(per_round) > 1 else 0.0,
                           "models": [str(m.relative_to(experiment_dir)) for m in models]}
        timings[method] = round(time.perf_counter() - started, 1)
    for method, seconds in timings.items():
        results[method]["seconds"] = seconds
    settings = {"objects_trained_with": objects, "rounds": rounds, "attempts": attempts, "num_novel": num_novel,
                "base_seed": base_seed, "profile": profile_name, "object_library": library,
                "exact_depth": exact_depth}
    return save_novel_results(experiment_dir, settings, results)


def save_novel_results(experiment_dir: str | Path, settings: dict, results: dict) -> dict:
    """Write `<experiment>/novel.json`: the test's `settings` and `results` by method, keeping the methods tested
    before under the same settings; returns the record."""
    record = {**settings, "methods": {}}
    path = Path(experiment_dir) / NOVEL_FILE
    if path.is_file():  # keep the methods tested before under the same settings
        before = json.loads(path.read_text())
        if all(before.get(k) == record[k] for k in settings):
            record["methods"] = {m: r for m, r in before["methods"].items() if m not in results}
    record["methods"].update(results)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
    return record
