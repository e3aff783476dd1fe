"""Every command README.md shows runs as written in a fresh `source scripts/env.sh` shell (issue 23, section 3).

The commands are read out of the README: every line of its ```bash blocks (`\\` continuations joined, comments
dropped), and every inline code span that starts with a command (a known tool, a `grasp-*` name, or, for spans of
more than one word, anything the workspace shell has on PATH; a lone word in backticks is a name, not a command).
`a | b` and `a / b` in a command are alternatives, each checked. How each one is checked:
- most run with their program part and `--help` (`grasp-experiments run --methods ... --out x` runs
  `grasp-experiments run --help`) and must exit 0, print a usage text, and list every `--flag` the README gives;
- `make TARGET` runs as `make -n TARGET` (the recipe is printed, not run: `make demo` takes minutes);
- `python -c CODE` and `source scripts/env.sh` run as written;
- `ros2 run PKG EXE`: the ros2 CLI is not installable beside the PyPI wheels, so EXE must be where `ros2 run`
  looks for it (install/PKG/lib/PKG/EXE, executable);
- what needs a tool that cannot be installed on the machines this project is tested on is in NOT_RUNNABLE, with
  the reason. Anything else that fails to run fails the test: a new command in the README must run.

It uses nothing of the project but the README, the workspace shell and the commands (tests/outside/README.md).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# Command prefixes this machine cannot run, and why; each must still appear in the README (no stale entries).
NOT_RUNNABLE = {
    ("ros2", "launch"): "ros2 launch is not installable beside the PyPI ROS wheels (tests/test_launch_files.py "
                        "runs the launch files against stand-ins)",
    ("ros2", "bag"): "the ros2 CLI is not installable here (tests/test_bags.py reads the bags)",
    ("ros2", "param"): "the ros2 CLI is not installable here",
    ("ros2", "service"): "the ros2 CLI is not installable here",
    ("ros2", "topic"): "the ros2 CLI is not installable here (the real robot's grip-signal check, docs/real_robot.md)",
    ("rviz2",): "RViz is not installable here (tests/test_rviz_config.py checks config/grasp.rviz)",
    ("docker",): "there is no Docker engine here (tests/test_docker_files.py checks docker/)",
    ("rosdep",): "rosdep needs a ROS 2 install in /opt/ros/jazzy",
    ("ssh",): "opens a tunnel from another computer",
}
if not Path("/opt/ros/jazzy/setup.bash").is_file():
    NOT_RUNNABLE[("source", "/opt/ros/jazzy/setup.bash")] = "no ROS 2 install in /opt/ros/jazzy here (the PyPI " \
                                                             "wheels in .venv stand in for it)"
# Tools a README span names as a command even when it is one word.
KNOWN_TOOLS = {"python", "python3", "make", "source", "ros2", "rviz2", "docker", "rosdep", "colcon", "ruff",
               "tensorboard", "ssh"}
# A fresh login shell's environment: nothing of an activated workspace.
FRESH_ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
             "/sbin:/bin", "LANG": "C.UTF-8", "ROS_DOMAIN_ID": os.environ.get("ROS_DOMAIN_ID", "0"),
             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]  # environment assignments first, then the program and its arguments
    where: str  # README line, for messages

    @property
    def text(self) -> str:
        return shlex.join(self.words)

    @property
    def program(self) -> tuple[str, ...]:
        return tuple(w for w in self.words if not ASSIGNMENT.match(w))


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _alternatives(words: list[str]) -> list[list[str]]:
    """`a x | y | z b` -> [a x b, a y b, a z b] (the README's way of naming several executables at once)."""
    for i, word in enumerate(words):
        if word in ("|", "/") and 0 < i < len(words) - 1:
            start = i - 1
            end = i + 1
            while end + 2 < len(words) + 1 and end + 1 < len(words) and words[end + 1] in ("|", "/"):
                end += 2
            options = words[start:end + 1:2]
            return [alt for option in options for alt in _alternatives(words[:start] + [option] + words[end + 1:])]
    return [words]


def _is_command(words: list[str], one_span: bool) -> bool:
    program = [w for w in words if not ASSIGNMENT.match(w)]
    if not program:
        return False
    first = program[0]
    if first in KNOWN_TOOLS or first.startswith("grasp-"):
        return True
    return not one_span or len(words) > 1 and shutil.which(first, path=_workspace_path()) is not None


_PATH: list[str] = []


def _workspace_path() -> str:
    """PATH of a fresh `source scripts/env.sh` shell."""
    if not _PATH:
        result = subprocess.run(["bash", "-c", "source scripts/env.sh >/dev/null && printf %s \"$PATH\""], cwd=ROOT,
                                env=FRESH_ENV, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"source scripts/env.sh failed in a fresh shell:\n{result.stderr}"
        _PATH.append(result.stdout)
    return _PATH[0]


def readme_commands() -> list[Command]:
    text = README.read_text(encoding="utf-8")
    commands: list[Command] = []
    fenced = list(re.finditer(r"```(\w*)\n(.*?)```", text, flags=re.S))
    for block in fenced:
        if block.group(1) != "bash":
            continue
        first_line = _line_of(text, block.start(2))
        lines = block.group(2).split("\n")
        i = 0
        while i < len(lines):
            line, number = lines[i], first_line + i
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i]
            i += 1
            words = shlex.split(line, comments=True)
            for alternative in _alternatives(words) if words else []:
                commands.append(Command(tuple(alternative), f"README.md:{number}"))
    prose = text
    for block in reversed(fenced):  # keep offsets (line numbers) while blanking the blocks
        prose = prose[:block.start()] + re.sub(r"[^\n]", " ", block.group(0)) + prose[block.end():]
    for span in re.finditer(r"`([^`]+)`", prose):
        try:
            words = shlex.split(" ".join(span.group(1).split()))
        except ValueError:
            continue  # unbalanced quotes: not a command
        if words and _is_command(words, one_span=True):
            for alternative in _alternatives(words):
                commands.append(Command(tuple(alternative), f"README.md:{_line_of(prose, span.start())}"))
    unique = {}
    for command in commands:
        unique.setdefault(command.words, command)
    return list(unique.values())


COMMANDS = readme_commands()


def _not_runnable(command: Command) -> str | None:
    program = command.program
    for prefix, reason in NOT_RUNNABLE.items():
        if program[:len(prefix)] == prefix:
            return reason
    return None


def _help_form(command: Command) -> tuple[list[str], list[str]]:
    """(the words to run, the flags the README gives that its help must list): the program part (up to the first
    option; `python -m MODULE` and sub-commands kept) plus --help."""
    words = list(command.words)
    start = next(i for i, w in enumerate(words) if not ASSIGNMENT.match(w))
    keep = start + 1
    if words[start] in ("python", "python3") and words[keep:keep + 1] == ["-m"]:
        keep += 2
    while keep < len(words) and not words[keep].startswith("-"):
        keep += 1
    flags = []
    for word in words[keep:]:
        if word == "--ros-args":
            break
        if word.startswith("--"):
            flags.append(word.split("=", 1)[0])
    return words[:keep] + ["--help"], flags


def run_in_workspace_shell(words: list[str], timeout: float = 180.0) -> subprocess.CompletedProcess:
    script = "source scripts/env.sh >/dev/null || exit 97\n" + shlex.join(words)
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=FRESH_ENV, capture_output=True, text=True,
                          timeout=timeout)


def test_the_readme_shows_the_commands_this_test_expects():
    """The extraction works: the README's main commands are found (and none of NOT_RUNNABLE is stale)."""
    texts = {c.text for c in COMMANDS}
    for expected in ("make demo", "make test", "source scripts/env.sh", "propose_grasp_client --count 3 --json",
                     "ros2 run grasp_annotation annotate"):
        assert expected in texts, f"{expected!r} not found among {sorted(texts)}"
    assert any(c.program[0] == "grasp-experiments" for c in COMMANDS)
    assert any(c.program[:3] == ("python", "-m", "grasp_core.pretrain") for c in COMMANDS)
    for prefix in NOT_RUNNABLE:
        assert any(c.program[:len(prefix)] == prefix for c in COMMANDS), f"NOT_RUNNABLE entry {prefix} is unused"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.text[:70] for c in COMMANDS])
def test_each_readme_command_runs_as_written(command: Command):
    reason = _not_runnable(command)
    if reason is not None:
        pytest.skip(f"{command.text}: {reason}")
    program = command.program
    if program[:2] == ("ros2", "run"):
        if len(program) < 4:
            pytest.skip(f"{command.text}: names the ros2 CLI's verb (not installable here), no executable")
        package, executable = program[2], program[3]
        path = ROOT / "install" / package / "lib" / package / executable
        assert path.is_file() and os.access(path, os.X_OK), \
            f"{command.where}: `{command.text}` needs {path.relative_to(ROOT)}, which is missing"
        return
    if program[0] == "make":
        words = list(command.words)
        words.insert(words.index("make") + 1, "-n")
        result = run_in_workspace_shell(words)
        assert result.returncode == 0 and result.stdout.strip(), \
            f"{command.where}: `{shlex.join(words)}` failed:\n{result.stdout}\n{result.stderr}"
        return
    if program[0] == "source" or program[:2] in (("python", "-c"), ("python3", "-c")):
        result = run_in_workspace_shell(list(command.words))
        assert result.returncode == 0, f"{command.where}: `{command.text}` failed:\n{result.stderr}"
        return
    words, flags = _help_form(command)
    result = run_in_workspace_shell(words)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command.where}: `{shlex.join(words)}` exited {result.returncode}:\n{output}"
    assert "usage" in output.lower(), f"{command.where}: `{shlex.join(words)}` printed no usage:\n{output}"
    missing = [flag for flag in flags if flag not in output]
    assert not missing, f"{command.where}: `{command.text}` uses {missing}, which `{shlex.join(words)}` does not list"
