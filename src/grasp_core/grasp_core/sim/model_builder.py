"""MJCF generation for the grasping world: table, capsule UR arm from DH parameters, RG2-like jaw, camera, objects.

Everything is generated as one XML string (no asset files): the arm's links are capsules along the DH
segments, the jaw is boxes, objects are primitives or convex meshes given by their vertices. World frame =
the arm's base frame (UR `base`, z up), table top at z = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from grasp_core.sim.camera import ARM_GROUP, CameraConfig, camera_xml
from grasp_core.sim.gripper import GripperParams, gripper_actuation_xml, gripper_body_xml, gripper_defaults_xml
from grasp_core.sim.objects import OBJECT_DENSITY, GeomSpec, ObjectSpec, geom_points
from grasp_core.sim.ur_kinematics import JOINT_NAMES, URParams
from grasp_core.workspace import WorkspaceLimits

LINK_NAMES = ("shoulder_link", "upper_arm_link", "forearm_link", "wrist_1_link", "wrist_2_link", "wrist_3_link")
TABLE_GEOM = "table"
FLANGE_BODY = "tool0"
TABLE_RGBA = (0.32, 0.32, 0.34, 1.0)
# Viscous damping on the objects' free joints (N s/m, N m s/rad): negligible for falling and carrying, but it stops
# cylinders and dumbbells rolling off the table (MuJoCo has no rolling friction below condim 6;
# condim 4 adds the torsional friction that stops objects spinning on one contact).
OBJECT_DAMPING = 2e-4


@dataclass(frozen=True)
class PhysicsParams:
    """Solver settings. Elliptic cones with a high impratio keep grasped objects from slipping (measured)."""

    timestep: float = 0.002                     # 0.004 blew up in cluttered grasps; 0.002 never did in our runs
    sleep: bool = True                          # resting objects sleep (skipped) until touched: ~2x faster grasps
    impratio: float = 10.0
    arm_kp: tuple[float, ...] = (6000.0, 6000.0, 4000.0, 1000.0, 1000.0, 500.0)
    # The simulated arm moves faster than a real UR (throughput matters): allow this multiple of UR's joint torques.
    torque_headroom: float = 4.0
    # A grasp in which a contact explodes (grasp_result.GraspPhysics: a light object wedged by the jaw gains tens of
    # m/s, a numerical artefact) is simulated again from the same state with the time step divided by the next of
    # these; the last one runs to the end whatever happens.
    refine_steps: tuple[int, ...] = (1, 4, 16)
    # MuJoCo's soft frictional contacts let objects on a pile creep; the noslip solver removes that slip, so
    # dropped scenes come to rest (measured: benchmarks/world_physics.py).
    noslip_iterations: int = 3


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _quat_x(angle: float) -> tuple[float, float, float, float]:
    return (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)


def arm_xml(robot: URParams, gripper: GripperParams) -> str:
    """Nested bodies base -> 6 links -> tool0 -> gripper. Body k carries joint k about its z axis; the next body
    sits at (a_k, 0, d_k) turned by Rx(alpha_k), so body frames follow UR's DH frames exactly."""
    xml = [f'<body name="base_link" gravcomp="1">'
           f'<geom name="base_geom" type="cylinder" fromto="0 0 0 0 0 {robot.d[0] * 0.6:.4f}" '
           f'size="{robot.link_radii[0] * 1.15:.4f}" class="arm" mass="4"/>']
    pos, quat = (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)
    for k in range(6):
        a, d, r = robot.a[k], robot.d[k], robot.link_radii[k]
        limit = 2 * math.pi
        xml.append(f'<body name="{LINK_NAMES[k]}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">'
                   f'<joint name="{JOINT_NAMES[k]}" axis="0 0 1" range="{-limit:.6f} {limit:.6f}"/>'
                   f'<geom name="{LINK_NAMES[k]}_joint" type="cylinder" fromto="0 0 {-r} 0 0 {r}" size="{r}" '
                   f'class="arm" mass="{robot.masses[k] * 0.3:.4f}"/>')
        if abs(a) + abs(d) > 1e-9:
            xml.append(f'<geom name="{LINK_NAMES[k]}_geom" type="capsule" fromto="0 0 0 {a} 0 {d}" '
                       f'size="{r * 0.8:.4f}" class="arm" mass="{robot.masses[k] * 0.7:.4f}"/>')
        pos, quat = (a, 0.0, d), _quat_x(robot.alpha[k])
    xml.append(f'<body name="{FLANGE_BODY}" pos="{_fmt(pos)}" quat="{_fmt(quat)}" gravcomp="1">'
               + gripper_body_xml(gripper) + '</body>')
    xml.append("</body>" * 7)
    return "".join(xml)


def _mesh_name(obj: ObjectSpec, k: int) -> str:
    return f"{obj.name}_mesh{k}"


def _object_geom_xml(obj: ObjectSpec, k: int, g: GeomSpec) -> str:
    common = (f'name="{obj.name}_geom{k}" class="object" pos="{_fmt(g.pos)}" quat="{_fmt(g.quat)}" '
              f'rgba="{_fmt(obj.rgba)}"')
    if g.kind in ("prism", "mesh"):
        return f'<geom {common} type="mesh" mesh="{_mesh_name(obj, k)}"/>'
    return f'<geom {common} type="{g.kind}" size="{_fmt(g.size)}"/>'


def objects_xml(objects: list[ObjectSpec]) -> tuple[str, str]:
    """(<asset> meshes, <worldbody> bodies). Bodies start parked below the table; the world places them."""
    assets, bodies = [], []
    for i, obj in enumerate(objects):
        for k, g in enumerate(obj.geoms):
            if g.kind in ("prism", "mesh"):
                local = GeomSpec(g.kind, g.size, polygon=g.polygon, vertices=g.vertices)
                assets.append(f'<mesh name="{_mesh_name(obj, k)}" vertex="{_fmt(geom_points(local).reshape(-1))}"/>')
        geoms = "".join(_object_geom_xml(obj, k, g) for k, g in enumerate(obj.geoms))
        bodies.append(f'<body name="{obj.name}" pos="{2.0 + 0.3 * i} 2 -0.5">'
                      f'<joint name="{obj.name}_joint" type="free" damping="{OBJECT_DAMPING}"/>{geoms}</body>')
    return "".join(assets), "".join(bodies)


def scene_xml(robot: URParams, gripper: GripperParams, objects: list[ObjectSpec], camera: CameraConfig,
              workspace: WorkspaceLimits, physics: PhysicsParams = PhysicsParams()) -> str:
    """The whole world as one MJCF string."""
    mesh_assets, object_bodies = objects_xml(objects)
    equality, gripper_actuator = gripper_actuation_xml(gripper)
    torques = [t * physics.torque_headroom for t in robot.torque_limits]
    arm_actuators = "".join(
        f'<position name="{j}_servo" joint="{j}" kp="{physics.arm_kp[k]}" dampratio="1" '
        f'forcerange="{-torques[k]} {torques[k]}" ctrlrange="{-2 * math.pi:.6f} {2 * math.pi:.6f}"/>'
        for k, j in enumerate(JOINT_NAMES))
    centre = ((workspace.x_min + workspace.x_max) / 2, (workspace.y_min + workspace.y_max) / 2)
    table_half = (max(0.5, workspace.x_max - workspace.x_min) + 0.3, max(0.5, workspace.y_max - workspace.y_min) + 0.3)
    return f"""<mujoco model="grasp_world_{robot.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics.timestep}" cone="elliptic" impratio="{physics.impratio}" integrator="implicitfast"
          noslip_iterations="{physics.noslip_iterations}">
    <flag sleep="{'enable' if physics.sleep else 'disable'}"/>
  </option>
  <statistic extent="1" center="{centre[0]} {centre[1]} 0"/>
  <visual>
    <global offwidth="{camera.width}" offheight="{camera.height}"/>
    <map znear="{camera.znear}" zfar="{camera.zfar}"/>
    <quality shadowsize="0" offsamples="0"/>  <!-- no multisampling: exact depth at edges, 4x faster readback -->
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
  </visual>
  <default>
    <default class="arm"><geom contype="0" conaffinity="0" group="{ARM_GROUP}" rgba="0.6 0.65 0.7 1"/></default>
    <default class="object"><geom density="{OBJECT_DENSITY}" friction="0.9 0.01 0.001" condim="4" group="0"/>
    </default>
    {gripper_defaults_xml(gripper)}
  </default>
  <asset>{mesh_assets}</asset>
  <worldbody>
    <light name="top" directional="true" pos="0 0 3" dir="0 0 -1" diffuse="0.5 0.5 0.5" specular="0 0 0"
           castshadow="false"/>
    <geom name="{TABLE_GEOM}" type="box" pos="{centre[0]} {centre[1]} -0.025"
          size="{table_half[0]} {table_half[1]} 0.025" rgba="{_fmt(TABLE_RGBA)}" group="0"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="6 6 0.1" rgba="0.2 0.2 0.2 1" group="0"/>
    {camera_xml(camera, workspace)}
    {arm_xml(robot, gripper)}
    {object_bodies}
  </worldbody>
  <contact><exclude body1="left_finger" body2="right_finger"/></contact>
  <equality>{equality}</equality>
  <actuator>{arm_actuators}{gripper_actuator}</actuator>
</mujoco>"""
