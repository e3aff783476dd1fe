from setuptools import find_packages, setup

package_name = "grasp_execution"

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
        "Executor node: heightmap -> /propose_grasp -> execute -> reward -> experience loop, with a simulated"
        " (grasp_sim services) and a MoveIt (UR3) backend."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "executor_node = grasp_execution.executor_node:main",
            "hand_eye_calibration = grasp_execution.hand_eye_node:main",
        ],
    },
)
