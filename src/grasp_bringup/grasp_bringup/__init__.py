"""Bring-up of the grasp-learning graph: launch files, per-robot YAML, and the no-`ros2 launch` demo runner."""
