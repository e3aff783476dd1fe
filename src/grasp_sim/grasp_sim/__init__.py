"""The MuJoCo grasping world (simulated UR5, UR3 twin) as a node: RealSense-like camera topics, /joint_states, execute-
grasp and reset services."""
