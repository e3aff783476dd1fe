"""A synthetic grasping task for learning tests: coloured discs ("blobs") on a small empty heightmap.

A grasp succeeds when its pixel lies on a blob (any jaw angle); the grasped blob disappears. Flat coloured
patches on the table ("stains", height 0) look like blobs in colour but cannot be grasped, so a network has to
learn height, not just brightness. The scene is
refilled when it is empty or after `max_failures` failures in a row. A failure leaves the scene unchanged, so
its transition is terminal (VPG: no change -> no future reward).
"""
from __future__ import annotations

import numpy as np

from grasp_core.dataset import KeypointSample
from grasp_core.replay import Experience


class BlobWorld:
    def __init__(self, size: int = 32, num_blobs: int = 3, radius: tuple[int, int] = (3, 5), seed: int = 0,
                 max_failures: int = 5, num_stains: int = 3):
        self.size, self.num_blobs, self.radius, self.max_failures = size, num_blobs, radius, max_failures
        self.num_stains = num_stains
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        discs = []  # (u, v, radius, colour, height)
        for _ in range(200):
            if len(discs) == self.num_blobs + self.num_stains:
                break
            r = int(self.rng.integers(self.radius[0], self.radius[1] + 1))
            u, v = self.rng.uniform(r + 1, self.size - r - 2, size=2)
            if all((u - b[0]) ** 2 + (v - b[1]) ** 2 > (r + b[2] + 2) ** 2 for b in discs):
                colour = self.rng.integers(60, 256, size=3)
                discs.append((float(u), float(v), r, colour, float(self.rng.uniform(0.02, 0.05))))
        self.blobs, self.stains = discs[:self.num_blobs], discs[self.num_blobs:]
        self.failures = 0

    def _masks(self, discs=None):
        v, u = np.mgrid[0:self.size, 0:self.size]
        return [(u - b[0]) ** 2 + (v - b[1]) ** 2 <= b[2] ** 2 for b in (self.blobs if discs is None else discs)]

    def heightmaps(self) -> tuple[np.ndarray, np.ndarray]:
        color = np.full((self.size, self.size, 3), 30, np.uint8)
        depth = np.zeros((self.size, self.size), np.float32)
        for b, m in zip(self.stains, self._masks(self.stains)):
            color[m] = b[3]
        for b, m in zip(self.blobs, self._masks()):
            color[m] = b[3]
            depth[m] = b[4]
        return color, depth

    def occupied_fraction(self) -> float:
        return float(np.mean(np.any(self._masks(), axis=0))) if self.blobs else 0.0

    def grasp(self, u: int, v: int) -> bool:
        for i, m in enumerate(self._masks()):
            if m[v, u]:
                del self.blobs[i]
                self.failures = 0
                return True
        self.failures += 1
        return False

    def keypoint_sample(self, sample_id: str) -> KeypointSample:
        color, depth = self.heightmaps()
        points = [[b[0], b[1]] for b in self.blobs]
        sigmas = [float(b[2]) for b in self.blobs]
        return KeypointSample(sample_id, color, depth, np.array(points, float), np.array(sigmas, float))


def run_episode_steps(learner, world: BlobWorld, steps: int, prefix: str = "s", exploration=None,
                      seed: int = 0) -> tuple[list[bool], float]:
    """Act, grasp and update for `steps` steps; returns per-step success and the mean random-grasp success rate."""
    from grasp_core.exploration import ExplorationConfig, epsilon_at, select_action

    exploration = exploration or ExplorationConfig(epsilon_decay_steps=100)
    rng = np.random.default_rng(seed)
    successes, chance = [], []
    for t in range(steps):
        color, depth = world.heightmaps()
        chance.append(world.occupied_fraction())
        epsilon = epsilon_at(exploration, t)
        action = select_action(learner.q_maps(color, depth), epsilon, rng, mode=exploration.mode,
                               temperature=exploration.temperature)
        success = world.grasp(action.u, action.v)
        empty = not world.blobs
        terminal = not success or empty
        next_color = next_depth = None
        if not terminal:
            next_color, next_depth = world.heightmaps()
        if empty or world.failures >= world.max_failures:
            world.reset()
        learner.update(Experience(id=f"{prefix}{t}", source="blob_world", attempt=t, color_hm=color, depth_hm=depth,
                                  rotation_index=action.rotation, num_rotations=learner.qnet.num_rotations,
                                  pixel=(action.u, action.v), reward=float(success), terminal=terminal,
                                  next_color_hm=next_color, next_depth_hm=next_depth, epsilon=epsilon,
                                  explored=action.explored, predicted_q=action.q))
        successes.append(success)
    return successes, float(np.mean(chance))


def bar_scene(seed: int = 0, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Three 3 x 5 px bars, 3 cm tall, on random colour: a heightmap whose jaw-geometry maps are not all zero."""
    rng = np.random.default_rng(seed)
    depth = np.zeros((side, side), np.float32)
    for _ in range(3):
        u, v = rng.integers(4, side - 8, size=2)
        depth[v:v + 5, u:u + 3] = 0.03
    color = (rng.random((side, side, 3)) * 255).astype(np.uint8)
    return color, depth
