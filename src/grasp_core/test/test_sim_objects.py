"""Object shapes: 9 training types and 10 novel ones, graspable sizes, and scenes without interpenetration."""
import math

import numpy as np
import pytest

from grasp_core.sim import GraspWorld, SimConfig
from grasp_core.sim.objects import NOVEL_SHAPES, TRAIN_SHAPES, make_object, sample_drop_poses, sample_objects


def widths(points: np.ndarray) -> np.ndarray:
    """Horizontal width of a point set across 36 directions (metres)."""
    angles = np.arange(36) * math.pi / 36
    proj = points[:, :2] @ np.stack([np.cos(angles), np.sin(angles)])
    return proj.max(axis=0) - proj.min(axis=0)


def test_shape_sets():
    assert len(TRAIN_SHAPES) == 9 and len(NOVEL_SHAPES) == 10
    assert not set(TRAIN_SHAPES) & set(NOVEL_SHAPES)


@pytest.mark.parametrize("shape", sorted(TRAIN_SHAPES) + sorted(NOVEL_SHAPES))
def test_sizes_are_graspable(shape):
    rng = np.random.default_rng(1)
    for i in range(20):
        obj = make_object(shape, rng, name=f"o{i}")
        w = widths(obj.points)
        assert 0.012 <= w.min() <= 0.09, (shape, w.min())      # some direction fits the 110 mm jaw
        height = np.ptp(obj.points[:, 2])
        assert 0.012 <= height <= 0.08, (shape, height)
        np.testing.assert_allclose(0.5 * (obj.points.min(0) + obj.points.max(0)), 0.0, atol=1e-9)  # centred


def test_random_objects_differ_and_are_reproducible():
    a = sample_objects(np.random.default_rng(3), 10)
    b = sample_objects(np.random.default_rng(3), 10)
    assert [o.shape for o in a] == [o.shape for o in b] and [o.rgba for o in a] == [o.rgba for o in b]
    assert len({o.rgba for o in a}) == 10 and len({o.shape for o in a}) > 3
    with pytest.raises(ValueError):
        sample_objects(np.random.default_rng(0), 0)
    with pytest.raises(ValueError):
        make_object("teapot", np.random.default_rng(0), "x")


def test_drop_poses_never_overlap():
    rng = np.random.default_rng(0)
    objects = sample_objects(rng, 10)
    poses = sample_drop_poses(rng, objects, (-0.6, -0.1), (-0.4, 0.1), table_z=0.0)
    for i, (pi, _) in enumerate(poses):
        assert pi[2] - objects[i].bounding_radius >= 0.0
        for j in range(i):
            gap = np.linalg.norm(pi - poses[j][0]) - objects[i].bounding_radius - objects[j].bounding_radius
            assert gap >= 0.0


def max_penetration(world: GraspWorld) -> float:
    """Deepest contact involving an object (metres, positive = interpenetrating)."""
    m, d = world.model, world.data
    object_bodies = set(world._object_body.values())
    depth = 0.0
    for i in range(d.ncon):
        c = d.contact[i]
        if m.geom_bodyid[c.geom1] in object_bodies or m.geom_bodyid[c.geom2] in object_bodies:
            depth = max(depth, -c.dist)
    return depth


@pytest.mark.parametrize("object_set,shapes", [("train", sorted(TRAIN_SHAPES)), ("novel", sorted(NOVEL_SHAPES))])
def test_every_shape_spawns_without_interpenetration(object_set, shapes):
    config = SimConfig(num_objects=len(shapes), object_set=object_set, seed=4, object_library="blocks")
    with GraspWorld(config) as world:
        names = world.reset(shapes=shapes)
        assert [n.split("_", 2)[2] for n in names] == shapes
        assert max_penetration(world) < 0.002
        states = world.object_states(only_in_workspace=False)
        assert len(states) == len(shapes)
        for s in states:  # resting on the table, none sunk through it or flung away
            assert s.world_points()[:, 2].min() > -0.003
            assert np.abs(s.position[:2] - [-0.5, 0.0]).max() < 0.35
        assert np.abs(world.data.qvel[6:]).max() < 0.2  # settled
        assert all(world.model.body_mass[world.model.body(n).id] > 0.001 for n in names)
