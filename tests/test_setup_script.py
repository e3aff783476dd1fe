"""scripts/setup.sh refuses a bad environment with a clear message, not a trace (and changes nothing)."""
import os
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
