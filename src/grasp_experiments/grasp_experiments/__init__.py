"""Experiment harness for the seed paper's simulated comparisons (ROS-free; see cli.py)."""
