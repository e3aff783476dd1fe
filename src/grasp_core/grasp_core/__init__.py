"""ROS-free core of the grasp-learning stack (never imports rclpy)."""
