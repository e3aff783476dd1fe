from setuptools import find_packages, setup

package_name = "grasp_annotation"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["static/*.html", "static/*.js", "static/*.css"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="Grasp learning maintainers",
    maintainer_email="maintainers@grasp-learning.invalid",
    description="Key-point datasets for pretraining: capture, web annotation tool, sim auto-annotation, inspection.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "capture = grasp_annotation.capture:main",
            "capture_node = grasp_annotation.capture:node_main",
            "annotate = grasp_annotation.web:main",
            "sim_keypoints = grasp_annotation.sim_keypoints:main",
            "inspect_dataset = grasp_annotation.inspection:main",
        ],
    },
)
