"""ROS-side helpers shared by the grasp nodes (message conversions, QoS, parameters)."""
