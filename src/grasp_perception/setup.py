from setuptools import find_packages, setup

package_name = "grasp_perception"

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
        "Camera to heightmap node: synchronises RealSense-style colour and aligned depth, projects them into "
        "the workspace and publishes grasp_interfaces/Heightmap."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "heightmap_node = grasp_perception.heightmap_node:main",
        ],
    },
)
