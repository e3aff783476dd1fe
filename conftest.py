"""Test-wide settings: every test run gets its own DDS domain, so parallel runs do not cross-talk."""
import os
import random

# A run may pin the domain (GRASP_TEST_ROS_DOMAIN_ID); otherwise pick one per run. Child processes the
# tests start inherit it through the environment.
os.environ["ROS_DOMAIN_ID"] = os.environ.get(
    "GRASP_TEST_ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
# Keep discovery on this machine (ROS 2 Jazzy).
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
