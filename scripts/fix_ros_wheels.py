"""Rewrite the build-machine paths baked into the ROS 2 PyPI wheels' exported CMake files.

The ros-jazzy-* wheels are built under /opt/python/cp311-cp311; their rosidl_generator_py export files
name that interpreter's include directory and numpy's include directory, so building a custom interface
package in a venv fails to find Python.h / numpy headers. This points them at the running interpreter.
Idempotent: a second run rewrites nothing. (A system ROS 2 install from apt does not need this.)
"""
import pathlib
import sys
import sysconfig

import numpy

BUILD_PYTHON = "/opt/python/cp311-cp311"
REPLACEMENTS = {
    f"{BUILD_PYTHON}/include/python3.11": sysconfig.get_paths()["include"],
    f"{BUILD_PYTHON}/lib/python3.11/site-packages/numpy/_core/include": numpy.get_include(),
}


def main(prefix: str) -> int:
    share = pathlib.Path(prefix) / "share"
    if not share.is_dir():
        print(f"fix_ros_wheels: {share} does not exist; are the ros-jazzy wheels installed?", file=sys.stderr)
        return 1
    changed = 0
    for path in share.rglob("*.cmake"):
        text = path.read_text()
        if BUILD_PYTHON not in text:
            continue
        new = text
        for old, repl in REPLACEMENTS.items():
            new = new.replace(old, repl)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f"fix_ros_wheels: rewrote {changed} CMake file(s) under {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
