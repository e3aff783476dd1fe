"""GraspWorld end to end: determinism, the grasp primitive's outcomes, resets, bad input, ground truth."""
import json
import math

import numpy as np
import pytest

from grasp_core.grasp_failure import GraspFailure
from grasp_core.sim import GraspWorld, SimConfig, make_keypoint_dataset
from grasp_core.sim.camera import RgbdCamera
from grasp_core.workspace import VPG_SIM_WORKSPACE


def box_grasp(world: GraspWorld) -> tuple[float, float, float]:
    """(x, y, yaw) closing across the box's narrower horizontal side, at its true centre."""
    state = world.object_states()[0]
    half = np.array(world.objects[0].geoms[0].size)
    axes = state.rotation
    up = int(np.argmax(np.abs(axes[2])))
    horizontal = [k for k in range(3) if k != up]
    narrow = min(horizontal, key=lambda k: half[k])
    direction = axes[:, narrow]
    return float(state.position[0]), float(state.position[1]), math.atan2(direction[1], direction[0])


def empty_spot(world: GraspWorld) -> tuple[float, float]:
    """The workspace point farthest from every object."""
    ws = world.workspace
    xs, ys = np.meshgrid(np.linspace(ws.x_min + 0.06, ws.x_max - 0.06, 30), np.linspace(ws.y_min + 0.06,
                                                                                        ws.y_max - 0.06, 30))
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    pts = np.concatenate([s.world_points()[:, :2] for s in world.object_states(only_in_workspace=False)])
    dist = np.min(np.linalg.norm(grid[:, None] - pts[None], axis=2), axis=1)
    best = int(np.argmax(dist))
    assert dist[best] > 0.08
    return float(grid[best, 0]), float(grid[best, 1])


@pytest.fixture(scope="module")
def world():
    w = GraspWorld(SimConfig(num_objects=4, seed=11, auto_reset=False, object_library="blocks"))
    yield w
    w.close()


def test_same_seed_same_images_and_outcomes():
    outcomes, images = [], []
    for _ in range(2):
        with GraspWorld(SimConfig(num_objects=6, seed=5)) as w:
            frame = w.render()
            images.append((frame.color, frame.depth_mm))
            run = []
            for k in range(3):
                s = w.object_states()[0]
                r = w.execute_grasp(s.position[0], s.position[1], k * math.pi / 4)
                run.append((r.grasp_success, int(r.failure_reason), r.grasped_object, round(r.jaw_opening, 9)))
            run.append(tuple(np.round(w.joint_positions(), 9)))
            run.append(tuple(np.round(w.render().depth_mm.sum(), 3) for _ in range(1)))
            outcomes.append(run)
    np.testing.assert_array_equal(images[0][0], images[1][0])
    np.testing.assert_array_equal(images[0][1], images[1][1])
    assert outcomes[0] == outcomes[1]
    with GraspWorld(SimConfig(num_objects=6, seed=6)) as other:
        assert not np.array_equal(other.render().color, images[0][0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grasp_at_a_box_true_centre_and_yaw_succeeds(seed):
    with GraspWorld(SimConfig(num_objects=1, seed=seed, auto_reset=False, object_library="blocks")) as w:
        w.reset(shapes=["box"])
        name = w.objects_in_workspace()[0]
        x, y, yaw = box_grasp(w)
        result = w.execute_grasp(x, y, yaw)  # z from the depth heightmap
        assert result.executed and result.grasp_success, result
        assert result.failure_reason == GraspFailure.NONE and result.grasped_object == name
        assert 0.015 < result.jaw_opening < 0.1
        assert result.objects_remaining == 0 and w.objects_in_workspace() == []
        assert np.isclose(result.angle, (yaw + math.pi / 2) % math.pi - math.pi / 2)
        _, depth_hm = w.heightmap()
        assert depth_hm.max() < 0.015  # the box has left the scene (the table reads a few mm with depth noise)


def test_grasp_in_empty_space_fails(world):
    world.reset(seed=3)
    before = {s.name: s.position for s in world.object_states()}
    x, y = empty_spot(world)
    result = world.execute_grasp(x, y, 0.3)
    assert result.executed and not result.grasp_success
    assert result.failure_reason == GraspFailure.NOTHING_GRASPED and result.grasped_object == ""
    assert result.jaw_opening < world.config.gripper.closed_threshold  # closed fully during the lift ...
    assert world.jaw_opening() > 0.1                                    # ... and reopened afterwards
    after = {s.name: s.position for s in world.object_states()}
    assert before.keys() == after.keys()  # nothing was touched
    for name in before:
        assert np.linalg.norm(before[name] - after[name]) < 0.005
    np.testing.assert_allclose(world.joint_positions()[:6], world._home, atol=0.01)  # parked again


def test_bad_targets_are_refused_without_moving(world):
    world.reset(seed=4)
    q0 = world.joint_positions()
    ws = world.workspace
    for args in [(np.nan, 0.0, 0.0), (-0.5, np.inf, 0.0), (-0.5, 0.0, np.nan), (ws.x_max + 0.01, 0.0, 0.0),
                 (-0.5, ws.y_min - 0.001, 1.0), ("left", 0.0, 0.0)]:
        result = world.execute_grasp(*args)
        assert not result.executed and result.failure_reason == GraspFailure.INVALID_TARGET, args
        assert result.message
    result = world.execute_grasp(-0.5, 0.0, 0.0, z=2.0)
    assert result.failure_reason == GraspFailure.INVALID_TARGET
    np.testing.assert_array_equal(world.joint_positions(), q0)
    assert world.execute_grasp(*empty_spot(world), 0.0).executed  # the world still works


def test_bad_object_counts_raise_and_the_world_can_still_reset(world):
    for bad in (0, 31, 2.5, "ten", True, -1):
        with pytest.raises(ValueError):
            world.reset(num_objects=bad)
    with pytest.raises(ValueError):
        world.reset(object_set="kitchen")
    with pytest.raises(ValueError):
        world.reset(shapes=["teapot"])
    with pytest.raises(ValueError):
        GraspWorld(SimConfig(num_objects=0))
    with pytest.raises(ValueError):
        GraspWorld(SimConfig(robot="ur10"))
    names = world.reset(num_objects=2, object_set="novel")
    assert len(names) == 2 and world.render().color.shape == (480, 640, 3)
    assert len(world.joint_names()) == len(world.joint_positions()) == 8


def test_resets_when_empty_or_stuck():
    with GraspWorld(SimConfig(num_objects=1, seed=2, max_actions_without_change=2, object_library="blocks")) as w:
        w.reset(shapes=["cube"])
        first = w.objects[0].name
        x, y, yaw = box_grasp(w)
        result = w.execute_grasp(x, y, yaw)
        assert result.grasp_success and result.grasped_object == first
        assert result.scene_reset and result.objects_remaining == 1 and w.num_resets == 3
        spot = empty_spot(w)
        assert not w.execute_grasp(*spot, 0.0).scene_reset
        stuck = w.execute_grasp(*spot, 0.0)
        assert stuck.scene_reset and "without change" in stuck.message and w.actions_without_change == 0


def test_unreachable_target():
    with GraspWorld(SimConfig(robot="ur3", workspace=VPG_SIM_WORKSPACE, num_objects=1, seed=0)) as w:
        result = w.execute_grasp(VPG_SIM_WORKSPACE.x_min + 0.01, VPG_SIM_WORKSPACE.y_max - 0.01, 0.0, z=0.0)
        assert result.executed and result.failure_reason == GraspFailure.UNREACHABLE


def test_ur3_twin_grasps_in_its_workspace():
    with GraspWorld(SimConfig(robot="ur3", num_objects=1, seed=1, auto_reset=False, object_library="blocks")) as w:
        w.reset(shapes=["box"])
        assert w.heightmap()[1].shape == (224, 224)
        with RgbdCamera(w.model, w.config.camera.exact_depth()) as camera:  # its parked arm is out of view too
            np.testing.assert_array_equal(camera.render(w.data, show_robot=False).depth_mm,
                                          camera.render(w.data).depth_mm)
        result = w.execute_grasp(*box_grasp(w))
        assert result.grasp_success, result


def test_ground_truth_keypoints(world):
    world.reset(num_objects=4, seed=8)
    points, sigmas, names = world.ground_truth_keypoints()
    assert points.shape == (len(names), 2) and sigmas.shape == (len(names),)
    assert sorted(names) == sorted(world.objects_in_workspace()) and len(names) >= 3
    _, depth_hm = world.heightmap()
    ws = world.workspace
    for (u, v), sigma, name in zip(points, sigmas, names):
        state = next(s for s in world.object_states() if s.name == name)
        # Centre pixel within a few pixels of the body's centre, on top of the object in the heightmap.
        pu, pv = (state.position[0] - ws.x_min) / ws.resolution, (state.position[1] - ws.y_min) / ws.resolution
        assert math.hypot(u - pu, v - pv) < 12
        assert depth_hm[int(v), int(u)] > 0.004, name
        assert 3 < sigma < 30


def test_make_keypoint_dataset(tmp_path):
    from grasp_core.dataset import load_dataset
    out = make_keypoint_dataset(tmp_path / "sim_kp", num_images=2, num_objects=[2, 3], seed=0, click_noise_px=1.5,
                                show_progress=False)
    index = json.loads((out / "dataset.json").read_text())
    assert index["format"] == "grasp-keypoints" and index["version"] == 1
    assert index["camera"]["intrinsics"]["distortion_model"] == "plumb_bob"
    dataset = load_dataset(out)
    assert len(dataset) == 2
    for sample in (dataset[0], dataset[1]):
        assert sample.color.shape == (224, 224, 3) and sample.depth.shape == (224, 224)
        assert len(sample.points) in (1, 2, 3) and np.all(sample.sigmas > 0)
    with pytest.raises(ValueError):
        make_keypoint_dataset(tmp_path / "bad", num_images=0)
    with pytest.raises(ValueError):
        make_keypoint_dataset(tmp_path / "bad", num_objects=[])


def test_a_physics_blow_up_resets_the_scene():
    with GraspWorld(SimConfig(num_objects=2, seed=0)) as w:
        x, y = empty_spot(w)
        w.data.qvel[:] = 1e12  # the state a numerical blow-up leaves behind
        result = w.execute_grasp(x, y, 0.0)
        assert result.scene_reset and "unstable" in result.message
        assert len(w.objects_in_workspace()) == 2 and w._instabilities() == 0
        np.testing.assert_allclose(w.joint_positions()[:6], w._home, atol=1e-9)
        assert w.execute_grasp(*empty_spot(w), 0.0).failure_reason == GraspFailure.NOTHING_GRASPED


@pytest.mark.parametrize("angle", [0.0, math.pi / 8, 3 * math.pi / 4, 1.5 * math.pi])
def test_jaws_close_along_the_requested_direction(world, monkeypatch, angle):
    """design.md: the jaws close along (cos a, sin a) in the world xy-plane, at the requested point."""
    world.reset(seed=9)
    x, y = empty_spot(world)
    seen = []
    original = world._set_gripper

    def record(opening, duration):
        if opening == 0.0:  # the moment the jaw closes
            seen.append(world.tcp_pose())
        original(opening, duration)

    monkeypatch.setattr(world, "_set_gripper", record)
    world.execute_grasp(x, y, angle)
    (position, rotation), = seen
    closing = rotation[:, 0]
    assert abs(closing[0] * math.cos(angle) + closing[1] * math.sin(angle)) > 0.999
    assert rotation[2, 2] < -0.999
    np.testing.assert_allclose(position[:2], [x, y], atol=0.002)
    assert position[2] < 0.03  # down at the table (finger tips just above it)
