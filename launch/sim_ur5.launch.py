"""The grasp-learning graph on the simulated UR5 (MuJoCo), no hardware.

    ros2 launch grasp_bringup sim_ur5.launch.py [use_rviz:=false] [learn:=false] [model_path:=/path/ckpt.safetensors]
        [pretrained_checkpoint:=/path/q_s.safetensors] [params_file:=/path/ur5_sim.yaml]
        [object_library:=blocks] [depth_noise:=false]

The world is the realistic one by default (irregular random_objects, a D435-like noisy depth camera);
object_library:=blocks depth_noise:=false is the seed's world.

Nodes: grasp_sim (RealSense-like camera topics, execute/reset services), heightmap_node (camera pose from
config/ur5_sim_calibration.yaml), affordance_node, learner_node (learn:=true), executor_node (sim backend), a static
transform world -> camera_color_optical_frame for RViz, and RViz with config/grasp.rviz. Every node reads
params_file (config/ur5_sim.yaml). The nodes are grasp_bringup.launch_support.SIM_GRAPH, the graph description
grasp_bringup's demo runner starts too (without `ros2 launch`, e.g. on the PyPI ROS wheels), with the same file.

Imports: the standard library, yaml, launch, launch_ros and grasp_bringup.launch_support only; `ros2 launch` runs
under the system Python, which does not see the project's virtual environment.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from grasp_bringup.launch_support import (SIM_CALIBRATION_FILE, SIM_GRAPH, SIM_PARAMS_FILE, read_calibration,
                                          static_transform_arguments)

CONFIG = PathJoinSubstitution([FindPackageShare("grasp_bringup"), "config"])


def static_camera_transform(context):
    """tf2's static_transform_publisher with the camera pose of the calibration file (for RViz's TF view)."""
    calibration = read_calibration(LaunchConfiguration("calibration_file").perform(context))
    return [Node(package="tf2_ros", executable="static_transform_publisher", name="camera_calibration_tf",
                 arguments=static_transform_arguments(calibration))]


def graph_nodes(params_file) -> list[Node]:
    """SIM_GRAPH's nodes (one robot, in the launch namespace), each with params_file and its launch arguments."""
    arguments = {  # node parameters set from launch arguments
        "heightmap_node": {"calibration_file": LaunchConfiguration("calibration_file")},
        "affordance_node": {"model_path": LaunchConfiguration("model_path")},
        "learner_node": {"pretrained_checkpoint": LaunchConfiguration("pretrained_checkpoint")},
        "sim_node": {"object_library": LaunchConfiguration("object_library"),
                     "depth_noise": LaunchConfiguration("depth_noise")},
    }
    conditions = {"learner_node": IfCondition(LaunchConfiguration("learn"))}
    return [Node(package=n.package, executable=n.executable, name=n.name, output="screen",
                 parameters=[params_file, arguments[n.executable]] if n.executable in arguments else [params_file],
                 condition=conditions.get(n.executable))
            for n in SIM_GRAPH]


def generate_launch_description():
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([CONFIG, SIM_PARAMS_FILE]),
                              description="Parameters of every node (config/ur5_sim.yaml)."),
        DeclareLaunchArgument("calibration_file",
                              default_value=PathJoinSubstitution([CONFIG, SIM_CALIBRATION_FILE]),
                              description="Simulated camera pose (base_frame, camera_frame, translation, rotation)."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Checkpoint the affordance node starts with ('' = wait for the learner)."),
        DeclareLaunchArgument("pretrained_checkpoint", default_value="",
                              description="Pretrained Q_s the learner warm-starts from ('' = vanilla DQN)."),
        DeclareLaunchArgument("learn", default_value="true", choices=["true", "false"],
                              description="Run the learner (false: evaluate a fixed model_path)."),
        DeclareLaunchArgument("object_library", default_value="random_objects", choices=["random_objects", "blocks"],
                              description="Simulated objects: irregular random_urdfs meshes, or the seed's blocks."),
        DeclareLaunchArgument("depth_noise", default_value="true", choices=["true", "false"],
                              description="A D435-like noisy depth camera (false: exact depth)."),
        DeclareLaunchArgument("use_rviz", default_value="true", choices=["true", "false"],
                              description="Start RViz with config/grasp.rviz."),
        *graph_nodes(params_file),
        OpaqueFunction(function=static_camera_transform),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", PathJoinSubstitution([CONFIG, "grasp.rviz"])],
             condition=IfCondition(LaunchConfiguration("use_rviz"))),
    ])
