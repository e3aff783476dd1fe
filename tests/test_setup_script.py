"""scripts/setup.sh refuses a bad environment with a clear message, not a trace (and changes nothing)."""
import os
import re
import sys
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_setup(tmp_path, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], env=full_env, capture_output=True,
                          text=True, timeout=60)


def test_missing_python_is_reported(tmp_path):
    result = _run_setup(tmp_path, PYTHON="no-such-python3")
    assert result.returncode != 0
    assert "no 'no-such-python3' on PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_old_python_is_reported(tmp_path):
    fake = tmp_path / "python3.8"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in *'print('*) echo 3.8;; *) exit 1;; esac\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = _run_setup(tmp_path, PYTHON=str(fake))
    assert result.returncode != 0
    assert "Python 3.8 is too old" in result.stderr


SETUP = (ROOT / "scripts" / "setup.sh").read_text()


def test_chromium_is_a_test_only_dependency():
    """`make setup` (and the Docker image) never installs a browser; `make test` asks for one where the
    distribution packages it, and says the browser tests will be skipped where it does not (Ubuntu's snap)."""
    block = SETUP[SETUP.index("GRASP_TEST_DEPS:-0"):SETUP.index("if [ ${#need_apt[@]} -gt 0 ]")]
    assert "need_apt+=(chromium)" in block and "snap" in block and "skipped" in block
    assert SETUP.count("need_apt+=(chromium)") == 1
    makefile = (ROOT / "Makefile").read_text()
    assert "GRASP_TEST_DEPS=1 bash scripts/setup.sh" in makefile


def test_system_ros_requirements_keep_apt_numpy(tmp_path):
    """On top of /opt/ros/jazzy the merged requirements replace exactly the pins that need numpy 2."""
    snippet = SETUP[SETUP.index("<<'PY'\n") + len("<<'PY'\n"):SETUP.index("\nPY\n")]
    script = tmp_path / "merge.py"
    script.write_text(snippet)
    merged = subprocess.run([sys.executable, str(script), str(ROOT / "requirements.txt"),
                             str(ROOT / "requirements-ros-system.txt")], capture_output=True, text=True, check=True)
    lines = [line for line in merged.stdout.splitlines() if line.strip() and not line.startswith("#")]
    names = [re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in lines]
    assert len(names) == len(set(names)), "a package is pinned twice"
    overrides = [line for line in (ROOT / "requirements-ros-system.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    for line in overrides:
        assert line in lines
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower()
        assert any(r.lower().startswith(name) for r in (ROOT / "requirements.txt").read_text().splitlines()), \
            f"{name} is overridden but not in requirements.txt"
    assert "numpy>=1.26,<2" in lines
    assert all(n in names for n in ("torch", "mujoco", "safetensors"))  # the rest is kept


def test_system_ros_install_runs_rosdep_with_a_clear_message():
    block = SETUP[SETUP.index("# --- 5. rosdep"):SETUP.index("# --- 6. colcon build")]
    assert "rosdep install --from-paths src --ignore-src" in block
    assert "apt-get install python3-rosdep" in block and "rosdep init" in block and "GRASP_SKIP_ROSDEP" in block
