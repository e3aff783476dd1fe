from setuptools import find_packages, setup

package_name = "grasp_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="Grasp learning maintainers",
    maintainer_email="maintainers@grasp-learning.invalid",
    description=(
        "The MuJoCo grasping world (simulated UR5, UR3 twin) as a node: RealSense-like camera topics, "
        "/joint_states, execute-grasp and reset services."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_node = grasp_sim.sim_node:main",
        ],
    },
)
