"""The grasp-learning graph on a real UR3 + RealSense D435 (ROS 2 Jazzy).

    ros2 launch grasp_bringup real_ur3.launch.py robot_ip:=192.168.1.102 [calibration_file:=/path/calib.yaml]
        [model_path:=/path/ckpt.safetensors] [pretrained_checkpoint:=/path/q_s.safetensors] [learn:=false]
        [use_rviz:=false] [params_file:=/path/ur3_real.yaml]

Starts ur_robot_driver (ur_control.launch.py, ur_type ur3), realsense2_camera (rs_launch.py with aligned depth and
no TF of its own), a static transform base_link -> camera optical frame from the calibration file, MoveIt
(ur_moveit_config's ur_moveit.launch.py), our nodes (heightmap, affordance, learner when learn:=true, executor with
the moveit backend) with params_file (config/ur3_real.yaml), and RViz with config/grasp.rviz.
"""
from grasp_perception.calibration import load_calibration
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

CONFIG = PathJoinSubstitution([FindPackageShare("grasp_bringup"), "config"])
UR_TYPE = "ur3"


def static_camera_transform(context):
    """tf2's static_transform_publisher with the calibrated camera pose (base_link -> camera optical frame)."""
    calibration = load_calibration(LaunchConfiguration("calibration_file").perform(context))
    (x, y, z), (qx, qy, qz, qw) = calibration.translation, calibration.rotation
    return [Node(package="tf2_ros", executable="static_transform_publisher", name="camera_calibration_tf",
                 arguments=["--x", str(x), "--y", str(y), "--z", str(z), "--qx", str(qx), "--qy", str(qy),
                            "--qz", str(qz), "--qw", str(qw), "--frame-id", calibration.base_frame,
                            "--child-frame-id", calibration.camera_frame])]


def include(package, launch_file, arguments):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare(package), "launch", launch_file])),
        launch_arguments=arguments.items())


def generate_launch_description():
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument("robot_ip", description="IP address of the UR3 controller."),
        DeclareLaunchArgument("calibration_file",
                              default_value=PathJoinSubstitution([CONFIG, "ur3_calibration.yaml"]),
                              description="Hand-eye calibration: camera optical frame pose in base_link."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Checkpoint the affordance node starts with ('' = wait for the learner)."),
        DeclareLaunchArgument("pretrained_checkpoint", default_value="",
                              description="Q_s pretrained on annotated key points to warm-start the learner from "
                                          "('' = vanilla DQN from random init)."),
        DeclareLaunchArgument("learn", default_value="true", choices=["true", "false"],
                              description="Run the learner (false: evaluate a fixed model_path)."),
        DeclareLaunchArgument("use_rviz", default_value="true", choices=["true", "false"],
                              description="Start RViz with config/grasp.rviz."),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([CONFIG, "ur3_real.yaml"]),
                              description="Parameters of our nodes (config/ur3_real.yaml)."),
        # The arm: driver, controllers, robot_state_publisher (its own RViz off; ours shows everything).
        include("ur_robot_driver", "ur_control.launch.py",
                {"ur_type": UR_TYPE, "robot_ip": LaunchConfiguration("robot_ip"), "launch_rviz": "false",
                 "tool_voltage": "24"}),
        # The camera: colour + depth aligned to it, frame-synchronised; no TF of its own, so the calibrated
        # static transform below is the optical frame's only parent.
        include("realsense2_camera", "rs_launch.py",
                {"camera_namespace": "camera", "camera_name": "camera", "align_depth.enable": "true",
                 "enable_sync": "true", "publish_tf": "false", "pointcloud.enable": "false",
                 "rgb_camera.color_profile": "640,480,30", "depth_module.depth_profile": "640,480,30"}),
        OpaqueFunction(function=static_camera_transform),
        # Motion planning (move_group; the executor plans through its own moveit_py instance).
        include("ur_moveit_config", "ur_moveit.launch.py", {"ur_type": UR_TYPE, "launch_rviz": "false"}),
        Node(package="grasp_perception", executable="heightmap_node", name="heightmap_node", output="screen",
             parameters=[params_file, {"calibration_file": LaunchConfiguration("calibration_file")}]),
        Node(package="grasp_affordance", executable="affordance_node", name="affordance_node", output="screen",
             parameters=[params_file, {"model_path": LaunchConfiguration("model_path")}]),
        Node(package="grasp_learning", executable="learner_node", name="learner_node", output="screen",
             parameters=[params_file, {"pretrained_checkpoint": LaunchConfiguration("pretrained_checkpoint")}],
             condition=IfCondition(LaunchConfiguration("learn"))),
        Node(package="grasp_execution", executable="executor_node", name="executor_node", output="screen",
             parameters=[params_file, {"backend": "moveit"}]),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", PathJoinSubstitution([CONFIG, "grasp.rviz"])],
             condition=IfCondition(LaunchConfiguration("use_rviz"))),
    ])
