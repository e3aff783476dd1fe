from setuptools import find_packages, setup

package_name = "grasp_learning"

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
        "Learner node: stores every experience from the replay topic on disk, runs DQN updates and announces "
        "versioned checkpoints; hosts the pretraining command."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "learner_node = grasp_learning.learner_node:main",
            "pretrain = grasp_learning.pretrain_command:main",
        ],
    },
)
