from setuptools import find_packages, setup

package_name = "grasp_core"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # the random_objects meshes and their licence notice (grasp_core.sim.objects)
    package_data={"grasp_core.sim": ["data/random_objects.npz", "data/LICENSE-pybullet_data.txt"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="Grasp learning maintainers",
    maintainer_email="maintainers@grasp-learning.invalid",
    description="ROS-free core of the grasp-learning stack.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "grasp-pretrain = grasp_core.pretrain_cli:main",
        ],
    },
)
