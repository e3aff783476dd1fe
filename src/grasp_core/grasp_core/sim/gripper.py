"""An RG2-like parallel jaw: two coupled fingers, 0-110 mm opening, force-limited closing.

Built under the arm's `tool0` flange frame (z out of the flange, pointing down in a top-down grasp): the
fingers slide along tool x, the closing axis, symmetric about the tool z axis. The TCP (`jaw centre`) sits
between the finger pads, `tcp_offset` metres from the flange; the finger tips are `tip_below_tcp` lower.
Pads use the contact settings that held grasps in measured trials (friction ~1.2, condim 4, priority 1).
"""
from __future__ import annotations

from dataclasses import dataclass

FINGER_JOINTS = ("left_finger_joint", "right_finger_joint")
TCP_SITE = "tcp"
GRIPPER_ACTUATOR = "gripper"


@dataclass(frozen=True)
class GripperParams:
    """Dimensions in metres, forces in newtons."""

    max_opening: float = 0.110          # RG2 stroke
    grip_force: float = 30.0            # RG2: 3-40 N
    palm_offset: float = 0.09           # flange -> bottom of the palm, where the fingers hang
    finger_length: float = 0.07
    finger_thickness: float = 0.012     # along the closing axis
    finger_width: float = 0.022
    pad_friction: float = 1.2
    closed_threshold: float = 0.004     # an opening below this counts as "fully closed" (nothing held)

    @property
    def tcp_offset(self) -> float:
        """Flange -> jaw centre: 2 cm above the finger tips."""
        return self.palm_offset + self.finger_length - self.tip_below_tcp

    @property
    def tip_below_tcp(self) -> float:
        return 0.02


def gripper_defaults_xml(params: GripperParams) -> str:
    return (f'<default class="pad"><geom type="box" condim="4" priority="1" '
            f'friction="{params.pad_friction} 0.02 0.001" solref="0.004 1" rgba="0.15 0.15 0.15 1" group="2"/>'
            f'</default>')


def gripper_body_xml(params: GripperParams) -> str:
    """The gripper's bodies, to insert inside the tool0 body."""
    p = params
    half_stroke = p.max_opening / 2
    ft, fw, fl = p.finger_thickness / 2, p.finger_width / 2, p.finger_length / 2
    palm_half_x = half_stroke + p.finger_thickness + 0.005
    fingers = []
    for name, sign in (("left", 1), ("right", -1)):
        fingers.append(
            f'<body name="{name}_finger" pos="0 0 {p.palm_offset}" gravcomp="1">'
            f'<joint name="{name}_finger_joint" type="slide" axis="{sign} 0 0" range="0 {half_stroke}" '
            f'armature="0.01" damping="1"/>'
            f'<geom name="{name}_pad" class="pad" pos="{sign * ft} 0 {fl}" size="{ft} {fw} {fl}" mass="0.05"/>'
            f'</body>')
    return (
        f'<geom name="gripper_coupling" type="cylinder" fromto="0 0 0 0 0 {p.palm_offset - 0.03}" size="0.035" '
        f'rgba="0.85 0.85 0.85 1" mass="0.3" group="2"/>'
        f'<geom name="gripper_palm" type="box" pos="0 0 {p.palm_offset - 0.015}" size="{palm_half_x} 0.02 0.015" '
        f'rgba="0.85 0.85 0.85 1" mass="0.3" group="2"/>'
        f'<site name="{TCP_SITE}" pos="0 0 {p.tcp_offset}" size="0.004" rgba="1 0 0 1" group="5"/>'
        + "".join(fingers))


def gripper_actuation_xml(params: GripperParams) -> tuple[str, str]:
    """(<equality> entries, <actuator> entries): fingers mirror each other; one force-limited position servo."""
    equality = (f'<joint name="finger_coupling" joint1="{FINGER_JOINTS[1]}" joint2="{FINGER_JOINTS[0]}" '
                f'polycoef="0 1 0 0 0" solref="0.005 1"/>')
    actuator = (f'<position name="{GRIPPER_ACTUATOR}" joint="{FINGER_JOINTS[0]}" kp="3000" dampratio="1" '
                f'ctrlrange="0 {params.max_opening / 2}" forcerange="{-params.grip_force} {params.grip_force}"/>')
    return equality, actuator
