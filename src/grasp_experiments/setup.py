from setuptools import find_packages, setup

package_name = "grasp_experiments"

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
        "Experiment harness (ROS-free): regenerates the seed paper's simulated comparisons with plots and a "
        "report."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "grasp-experiments = grasp_experiments.cli:main",
        ],
    },
)
