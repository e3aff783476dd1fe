"""Run a node graph as separate processes without `ros2 launch` (absent from the PyPI ROS wheels).

Each node is the installed executable `install/<pkg>/lib/<pkg>/<exe>` started with
`--ros-args -r __ns:=<namespace> [-r __node:=<name>] --params-file <yaml> -p name:=value ...`, in one DDS domain
(a fresh random ROS_DOMAIN_ID unless given) with localhost-only discovery. Every node's stdout/stderr goes to
`<log_dir>/<label>.log`. `stop()` sends SIGINT to every node (rclpy shuts down cleanly on it), then SIGTERM,
then SIGKILL to whatever is still running; children get their own session so a terminal's Ctrl-C reaches only
the runner, which then stops them in order.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

def find_repo_root(start: Path | None = None) -> Path:
    """The workspace root (the folder holding `install/` and `src/`): from $GRASP_WS, `start`, or the cwd."""
    candidates = [Path(os.environ["GRASP_WS"])] if os.environ.get("GRASP_WS") else []
    for base in ([start] if start else []) + [Path(__file__).resolve(), Path.cwd()]:
        candidates.extend([base, *base.parents])
    for c in candidates:
        if (c / "install").is_dir() and (c / "src").is_dir():
            return c
    raise FileNotFoundError("cannot find the colcon workspace (a folder with install/ and src/); run `make setup` "
                            "and start from the repository, or set GRASP_WS")


def ros_arg_value(value) -> str:
    """A Python value as a `-p name:=value` literal (YAML; JSON is valid YAML, and keeps strings strings)."""
    if isinstance(value, (bool, int, float, str)) or (isinstance(value, list) and value):
        return json.dumps(value)
    raise ValueError(f"cannot pass {value!r} ({type(value).__name__}) as a ROS parameter on the command line")


@dataclass
class NodeSpec:
    """One node process: which executable, in which namespace, with which parameters."""

    package: str
    executable: str
    namespace: str = "/"
    params: dict = field(default_factory=dict)
    node_name: str | None = None  # remap the node's name (e.g. two executors in one namespace)
    label: str | None = None  # name of its log file and in messages; default `<namespace>_<executable>`

    def __post_init__(self) -> None:
        if not self.namespace.startswith("/"):
            raise ValueError(f"namespace must be absolute (start with '/'), got {self.namespace!r}")
        if self.label is None:
            ns = self.namespace.strip("/").replace("/", "_")
            self.label = f"{ns}_{self.executable}" if ns else self.executable


@dataclass
class RunningNode:
    spec: NodeSpec
    process: subprocess.Popen
    log_path: Path

    @property
    def label(self) -> str:
        return self.spec.label

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def fresh_domain_id(rng: random.Random | None = None) -> int:
    """A random ROS_DOMAIN_ID in [1, 101] (valid on every OS, away from the default 0)."""
    return (rng or random.SystemRandom()).randint(1, 101)


class ProcessGraph:
    """Starts and stops node processes; use as a context manager so every child is stopped on exit."""

    def __init__(self, log_dir, params_file=None, domain_id: int | None = None, workspace_root=None,
                 extra_env: dict | None = None):
        self.root = Path(workspace_root) if workspace_root else find_repo_root()
        self.params_file = Path(params_file).resolve() if params_file else None
        if self.params_file is not None and not self.params_file.is_file():
            raise FileNotFoundError(f"parameter file {self.params_file} does not exist")
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.domain_id = fresh_domain_id() if domain_id is None else int(domain_id)
        self.env = dict(os.environ)
        self.env.update({"ROS_DOMAIN_ID": str(self.domain_id), "PYTHONUNBUFFERED": "1",
                         "ROS_AUTOMATIC_DISCOVERY_RANGE": self.env.get("ROS_AUTOMATIC_DISCOVERY_RANGE",
                                                                       "LOCALHOST"),
                         "RCUTILS_COLORIZED_OUTPUT": "0",
                         # Marks the children (visible in /proc/<pid>/environ), so leftovers can be found.
                         "GRASP_GRAPH_LOG_DIR": str(self.log_dir.resolve())})
        self.env.update({k: str(v) for k, v in (extra_env or {}).items()})
        self.nodes: list[RunningNode] = []

    def executable(self, package: str, executable: str) -> Path:
        path = self.root / "install" / package / "lib" / package / executable
        if not path.exists():
            raise FileNotFoundError(f"{package}/{executable} is not installed ({path} is missing): run `make setup` "
                                    f"(it rebuilds the workspace when an entry point is added)")
        return path

    def command(self, spec: NodeSpec) -> list[str]:
        cmd = [str(self.executable(spec.package, spec.executable)), "--ros-args", "-r", f"__ns:={spec.namespace}"]
        if spec.node_name:
            cmd += ["-r", f"__node:={spec.node_name}"]
        if self.params_file is not None:
            cmd += ["--params-file", str(self.params_file)]
        for name, value in spec.params.items():
            cmd += ["-p", f"{name}:={ros_arg_value(value)}"]
        return cmd

    def start(self, spec: NodeSpec) -> RunningNode:
        if any(n.label == spec.label for n in self.nodes):
            raise ValueError(f"a node labelled {spec.label!r} is already running; give it another label")
        cmd = self.command(spec)
        log_path = self.log_dir / f"{spec.label}.log"
        log = open(log_path, "wb")
        try:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=self.env, cwd=self.root, start_new_session=True)
        finally:
            log.close()  # the child holds its own descriptor
        node = RunningNode(spec, process, log_path)
        self.nodes.append(node)
        return node

    def node(self, label: str) -> RunningNode:
        for n in self.nodes:
            if n.label == label:
                return n
        raise KeyError(f"no node labelled {label!r} (running: {[n.label for n in self.nodes]})")

    def dead(self) -> list[RunningNode]:
        """Nodes that have exited."""
        return [n for n in self.nodes if not n.alive()]

    def wait_for_log(self, label: str, text: str, timeout: float) -> bool:
        """Wait until `text` appears in a node's log (False on timeout or if the node exits first)."""
        node = self.node(label)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if text in node.log_path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            if not node.alive():
                return False
            time.sleep(0.1)
        return False

    def stop_node(self, node: RunningNode, timeout: float = 10.0, interrupted: bool = False) -> int | None:
        """SIGINT (unless `interrupted`: already sent), then SIGTERM, then SIGKILL; returns the exit code."""
        steps = ((None if interrupted else signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0))
        for sig, wait in steps:
            if not node.alive():
                break
            try:
                if sig is not None:
                    node.process.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                node.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return node.process.poll()

    def kill(self, label: str) -> None:
        """SIGKILL one node at once (crash tests) and forget it, so it can be started again."""
        node = self.node(label)
        node.process.kill()
        node.process.wait(timeout=10)
        self.nodes.remove(node)

    def stop(self, timeout: float = 10.0) -> dict[str, int | None]:
        """Stop every node, last started first (SIGINT to all at once, then escalate per node)."""
        for node in self.nodes:
            if node.alive():
                try:
                    node.process.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
        codes = {}
        for node in reversed(self.nodes):
            codes[node.label] = self.stop_node(node, timeout, interrupted=True)
        self.nodes = []
        return codes

    def __enter__(self) -> "ProcessGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
