"""The grasp-learning graph on a real UR3 + RealSense D435 (ROS 2 Jazzy), or a dry run of it without the robot.

    ros2 launch grasp_bringup real_ur3.launch.py robot_ip:=192.168.1.102 [kinematics_params_file:=/path/calib.yaml]
        [calibration_file:=/path/camera.yaml] [model_path:=/path/ckpt.safetensors]
        [pretrained_checkpoint:=/path/q_s.safetensors] [learn:=false] [use_rviz:=false] [headless_mode:=true]
        [params_file:=/path/ur3_real.yaml]
    ros2 launch grasp_bringup real_ur3.launch.py use_mock_hardware:=true camera:=sim     # dry run, no robot
    ros2 launch grasp_bringup real_ur3.launch.py robot_ip:=192.168.1.102 calibrate:=true \
        calibration_file:=$HOME/ur3_calibration.yaml                                  # hand-eye calibration

Starts ur_robot_driver (ur_control.launch.py, ur_type ur3; `use_mock_hardware`, `headless_mode` and
`kinematics_params_file` are passed on), the camera (`camera:=realsense`: realsense2_camera rs_launch.py with aligned
depth and no TF of its own; `camera:=sim`: the simulated UR3 cell's camera from grasp_sim; `camera:=none`: bring your
own, e.g. `ros2 bag play`), a static transform base -> camera optical frame from the calibration file, our nodes
(heightmap, affordance, learner when learn:=true, executor with the moveit backend, which plans through its own
moveit_py instance: no move_group) with params_file (config/ur3_real.yaml), and RViz with config/grasp.rviz.

Included launch files share this file's launch configurations (ROS 2 launch does not scope an include, and an
included DeclareLaunchArgument keeps a value already set): so `kinematics_params_file` defaults to the driver's own
default (ur_description's config/ur3/default_kinematics.yaml), never '', which ur_rsp.launch.py would inherit and
hand to xacro.

On the real robot the UR's External Control URCap program must be running on the pendant (or headless_mode:=true):
the executor waits for /io_and_status_controller/robot_program_running before its first grasp and after a failed
motion, and says so. With use_mock_hardware:=true the driver runs ros2_control's mock hardware: MoveIt plans and
"executes" every motion, the gripper is not switched (moveit.gripper none), no tool voltage is set and the
program-running wait is off, so every grasp is a miss; the whole graph runs before anyone touches the robot.

calibrate:=true starts the driver, the camera and grasp_execution's hand_eye_calibration instead of the
grasp-learning nodes: it moves the arm with a checkerboard on the tool through a grid of poses and writes the camera
pose to calibration_file (required then). It gets params_file's `/**/hand_eye_calibration` section and the
executor's `moveit.*` (the same cell: table, camera mount, gripper box).

Imports: the standard library, yaml, launch, launch_ros and grasp_bringup.launch_support only; `ros2 launch` runs
under the system Python, which does not see the project's virtual environment.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from grasp_bringup.launch_support import is_true, node_parameters, read_calibration, static_transform_arguments

UR_TYPE = "ur3"
CAMERAS = ["realsense", "sim", "none"]
# The camera calibration used when calibration_file is '' (in grasp_bringup's config/).
DEFAULT_CALIBRATION = {"realsense": "ur3_calibration.yaml", "none": "ur3_calibration.yaml",
                       "sim": "ur3_sim_calibration.yaml"}
# Extra parameters for the simulated camera's cell (the UR3 twin's workspace and table), after params_file.
SIM_CAMERA_PARAMS = "ur3_sim_camera.yaml"


def include(package, launch_file, arguments):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare(package), "launch", launch_file])),
        launch_arguments=arguments.items())


def launch_setup(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    config = os.path.join(FindPackageShare("grasp_bringup").perform(context), "config")
    mock = is_true(arg("use_mock_hardware"))
    robot_ip = arg("robot_ip")
    if not robot_ip and not mock:
        raise RuntimeError("real_ur3.launch.py: give robot_ip:=<the UR3 controller's address>, or "
                           "use_mock_hardware:=true for a dry run without the robot")
    camera = arg("camera")
    calibrate = is_true(arg("calibrate"))
    if calibrate and not arg("calibration_file"):
        raise RuntimeError("real_ur3.launch.py calibrate:=true: give calibration_file:=<the YAML to write>")
    calibration_file = arg("calibration_file") or os.path.join(config, DEFAULT_CALIBRATION[camera])
    kinematics_params_file = arg("kinematics_params_file")
    if not kinematics_params_file:
        raise RuntimeError("real_ur3.launch.py: kinematics_params_file:= is empty; leave it out for ur_description's "
                           "nominal UR3 kinematics, or give your robot's calibration (ur_calibration)")
    params = [arg("params_file")] + ([os.path.join(config, SIM_CAMERA_PARAMS)] if camera == "sim" else [])

    # The arm: driver, controllers, robot_state_publisher (its own RViz off; ours shows everything). Tool voltage
    # is not passed here: the driver applies it only with tool communication (e-Series); the executor sets it
    # through SetIO at start-up instead (moveit.tool_voltage), which works on CB3 and e-Series.
    # kinematics_params_file reaches ur_rsp.launch.py (which declares it) through the shared launch context.
    driver = {"ur_type": UR_TYPE, "robot_ip": robot_ip or "0.0.0.0", "launch_rviz": "false",
              "use_mock_hardware": "true" if mock else "false", "headless_mode": arg("headless_mode"),
              "kinematics_params_file": kinematics_params_file}
    executor = {"backend": "moveit", "moveit.kinematics_params_file": kinematics_params_file}
    if mock:
        # Mock hardware: no gripper, no tool voltage, and no External Control program to wait for.
        executor.update({"moveit.gripper": "none", "moveit.tool_voltage": 0, "moveit.program_running_topic": ""})
    actions = [include("ur_robot_driver", "ur_control.launch.py", driver)]

    if camera == "realsense":
        # Colour + depth aligned to it, frame-synchronised; no TF of its own, so the calibrated static transform
        # below is the optical frame's only parent.
        actions.append(include("realsense2_camera", "rs_launch.py", {
            "camera_namespace": "camera", "camera_name": "camera", "align_depth.enable": "true",
            "enable_sync": "true", "publish_tf": "false", "pointcloud.enable": "false",
            "rgb_camera.color_profile": "640,480,30", "depth_module.depth_profile": "640,480,30"}))
    elif camera == "sim":
        # The simulated UR3 cell's camera topics; its joint states go elsewhere (the driver owns /joint_states).
        actions.append(Node(package="grasp_sim", executable="sim_node", name="grasp_sim", output="screen",
                            parameters=params))
    if calibrate:
        # The robot's description as the executor's (params_file's moveit.*), the calibration's own settings.
        robot = node_parameters(params, "executor_node", "moveit")
        robot.update({k: v for k, v in executor.items() if k.startswith("moveit.")})
        robot.update({"moveit.node_name": "hand_eye_moveit_py", "output": calibration_file})
        actions.append(Node(package="grasp_execution", executable="hand_eye_calibration",
                            name="hand_eye_calibration", output="screen", parameters=params + [robot]))
        if is_true(arg("use_rviz")):
            actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
                                arguments=["-d", os.path.join(config, "grasp.rviz")]))
        return actions
    calibration = read_calibration(calibration_file)
    actions += [
        Node(package="tf2_ros", executable="static_transform_publisher", name="camera_calibration_tf",
             arguments=static_transform_arguments(calibration)),
        Node(package="grasp_perception", executable="heightmap_node", name="heightmap_node", output="screen",
             parameters=params + [{"calibration_file": calibration_file}]),
        Node(package="grasp_affordance", executable="affordance_node", name="affordance_node", output="screen",
             parameters=params + [{"model_path": arg("model_path")}]),
        Node(package="grasp_execution", executable="executor_node", name="executor_node", output="screen",
             parameters=params + [executor]),
    ]
    if is_true(arg("learn")):
        actions.append(Node(package="grasp_learning", executable="learner_node", name="learner_node",
                            output="screen",
                            parameters=params + [{"pretrained_checkpoint": arg("pretrained_checkpoint")}]))
    if is_true(arg("use_rviz")):
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
                            arguments=["-d", os.path.join(config, "grasp.rviz")]))
    return actions


def generate_launch_description():
    config = PathJoinSubstitution([FindPackageShare("grasp_bringup"), "config"])
    return LaunchDescription([
        DeclareLaunchArgument("robot_ip", default_value="",
                              description="IP address of the UR3 controller (not needed with use_mock_hardware)."),
        DeclareLaunchArgument("use_mock_hardware", default_value="false", choices=["true", "false"],
                              description="Dry run: ur_robot_driver's mock hardware instead of the robot (MoveIt "
                                          "plans and executes, no gripper)."),
        DeclareLaunchArgument("camera", default_value="realsense", choices=CAMERAS,
                              description="realsense (D435), sim (the simulated UR3 cell's camera) or none "
                                          "(publish the camera topics yourself, e.g. ros2 bag play)."),
        DeclareLaunchArgument("headless_mode", default_value="false", choices=["true", "false"],
                              description="ur_robot_driver headless mode (no External Control program on the "
                                          "pendant; the robot must be in remote control)."),
        DeclareLaunchArgument("kinematics_params_file",
                              default_value=PathJoinSubstitution([FindPackageShare("ur_description"), "config",
                                                                  UR_TYPE, "default_kinematics.yaml"]),
                              description="The robot's factory calibration (ur_calibration), given to the driver "
                                          "and to the executor's MoveIt (default: ur_description's nominal UR3 "
                                          "kinematics, as the driver's own default)."),
        DeclareLaunchArgument("calibration_file", default_value="",
                              description="Hand-eye calibration: camera optical frame pose in the base frame "
                                          "('' = config/ur3_calibration.yaml, or ur3_sim_calibration.yaml with "
                                          "camera:=sim); with calibrate:=true, the file to write."),
        DeclareLaunchArgument("calibrate", default_value="false", choices=["true", "false"],
                              description="Hand-eye calibration instead of grasp learning: the arm shows a "
                                          "checkerboard on its tool to the camera (grasp_execution "
                                          "hand_eye_calibration) and the camera pose goes to calibration_file."),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Checkpoint the affordance node starts with ('' = wait for the learner)."),
        DeclareLaunchArgument("pretrained_checkpoint", default_value="",
                              description="Q_s pretrained on annotated key points to warm-start the learner from "
                                          "('' = vanilla DQN from random init)."),
        DeclareLaunchArgument("learn", default_value="true", choices=["true", "false"],
                              description="Run the learner (false: evaluate a fixed model_path)."),
        DeclareLaunchArgument("use_rviz", default_value="true", choices=["true", "false"],
                              description="Start RViz with config/grasp.rviz."),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([config, "ur3_real.yaml"]),
                              description="Parameters of our nodes (config/ur3_real.yaml)."),
        OpaqueFunction(function=launch_setup),
    ])
