"""`make test` lints the repository with ruff (settings in ruff.toml at the root), so style problems fail the
same run as broken behaviour."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff_command() -> list[str]:
    """ruff from the test interpreter's environment (requirements.txt pins it), else from PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    if found:
        return [found]
    pytest.fail("ruff is not installed: run `make setup` (requirements.txt pins it)")


def test_ruff_finds_nothing():
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "ruff check (fix these; `ruff check --fix` fixes some):\n" + result.stdout + \
        result.stderr


def test_ruff_version_is_the_pinned_one():
    pinned = next(line.split("==", 1)[1].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("ruff=="))
    version = subprocess.run([*ruff_command(), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.split()[-1] == pinned, f"ruff {version.strip()} is installed, requirements.txt pins {pinned}"
