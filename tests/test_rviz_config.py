"""config/grasp.rviz shows what the graph publishes, in the root namespace (ros2 launch) and in /robot1 (the demo)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class UniqueKeyLoader(yaml.SafeLoader):
    """A duplicate key in a mapping is an error (RViz would silently keep one of them)."""


def _mapping(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line + 1}"
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def displays(items):
    for d in items:
        yield d
        yield from displays(d.get("Displays", []))


def test_rviz_shows_the_demo_robot_and_a_root_namespace_robot():
    config = yaml.load((ROOT / "config" / "grasp.rviz").read_text(), Loader=UniqueKeyLoader)
    shown = {}
    for d in displays(config["Visualization Manager"]["Displays"]):
        topic = d.get("Topic", {}).get("Value") if isinstance(d.get("Topic"), dict) else None
        if topic:
            shown[topic] = d["Class"]
    # Per robot (heightmap_node and the camera run in the robot's namespace).
    for namespace in ("", "/robot1"):
        for topic in ("/grasp/heightmap/color", "/grasp/heightmap/depth", "/camera/camera/color/image_raw"):
            assert shown.get(namespace + topic) == "rviz_default_plugins/Image", namespace + topic
    # Shared: the affordance node runs in the root namespace in the launch files and in the demo.
    assert shown["/grasp/affordance"] == shown["/grasp/affordance_grid"] == "rviz_default_plugins/Image"
    assert shown["/grasp/proposal_markers"] == "rviz_default_plugins/MarkerArray"
    assert shown["/grasp/affordance_cloud"] == "rviz_default_plugins/PointCloud2"
    published = {"/robot_description"} | {ns + t for ns in ("", "/robot1") for t in (
        "/grasp/heightmap/color", "/grasp/heightmap/depth", "/camera/camera/color/image_raw")} | {
        "/grasp/affordance", "/grasp/affordance_grid", "/grasp/proposal_markers", "/grasp/affordance_cloud"}
    assert set(shown) <= published, f"RViz shows topics nothing publishes: {set(shown) - published}"


def test_rviz_shows_moveit_py_planning_scene():
    """The real UR3's collision scene (table, camera mount, the gripper box on tool0), as MoveItPy's planning scene
    monitor publishes it (moveit 2.12: `monitored_planning_scene` relative to its node in the root namespace; no
    move_group). Attached bodies are drawn on the scene robot's links, so its visual must be on."""
    config = yaml.load((ROOT / "config" / "grasp.rviz").read_text(), Loader=UniqueKeyLoader)
    (scene,) = [d for d in displays(config["Visualization Manager"]["Displays"])
                if d["Class"] == "moveit_rviz_plugin/PlanningScene"]
    assert scene["Enabled"] and scene["Planning Scene Topic"] == "/monitored_planning_scene"
    assert scene["Robot Description"] == "robot_description" and scene["Move Group Namespace"] == ""
    assert scene["Scene Geometry"]["Show Scene Geometry"] and scene["Scene Robot"]["Show Robot Visual"]
    moveit_py = yaml.safe_load((ROOT / "config" / "moveit_py_ur3.yaml").read_text())
    assert moveit_py["publish_robot_description_semantic"] is True  # the display needs the SRDF; no move_group
