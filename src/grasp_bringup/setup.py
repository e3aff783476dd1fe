import glob
import os

from setuptools import find_packages, setup

package_name = "grasp_bringup"
# The launch files and YAML live at the top of the repository (launch/, config/) where users look for
# them; installing them into this package's share directory makes `ros2 launch grasp_bringup ...` work.
# realpath: colcon runs this file through a symlink in build/.
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".."))


def repo_files(pattern):
    return sorted(os.path.relpath(p) for p in glob.glob(os.path.join(REPO_ROOT, pattern)))


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", repo_files("launch/*.launch.py")),
        ("share/" + package_name + "/config", repo_files("config/*.yaml") + repo_files("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="Grasp learning maintainers",
    maintainer_email="maintainers@grasp-learning.invalid",
    description="Launch files, per-robot YAML, RViz config and the simulated demo runner of the grasp-learning stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_demo = grasp_bringup.demo:main",
            "viewer = grasp_bringup.viewer:main",
        ],
    },
)
