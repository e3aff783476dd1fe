from setuptools import find_packages, setup

package_name = "grasp_affordance"

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
        "Affordance inference node: holds the grasp Q-network, serves /propose_grasp and publishes affordance"
        " maps, grasp markers and a coloured point cloud for RViz."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "affordance_node = grasp_affordance.affordance_node:main",
            "propose_grasp_client = grasp_affordance.propose_grasp_client:main",
        ],
    },
)
