"""ProcessGraph on stand-in executables (no ROS): command lines, logs, clean stop, escalation, SIGKILL."""
import os
import stat
import sys
import textwrap

import pytest

from grasp_bringup.process_graph import NodeSpec, ProcessGraph, ros_arg_value

# A stand-in node: logs its argv and environment, then waits; on SIGINT it writes "clean exit" (or ignores SIGINT
# when its name says so, like a hung node).
FAKE_NODE = textwrap.dedent("""\
    #!{python}
    import os, signal, sys, time
    print("argv", sys.argv[1:], flush=True)
    print("domain", os.environ.get("ROS_DOMAIN_ID"), flush=True)
    stubborn = "stubborn" in sys.argv[0]
    def on_int(signum, frame):
        if stubborn:
            print("ignoring SIGINT", flush=True)
            return
        print("clean exit", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGINT, on_int)
    print("READY", flush=True)
    while True:
        time.sleep(0.05)
    """)


@pytest.fixture
def workspace(tmp_path):
    for exe in ("fake_node", "stubborn_node"):
        path = tmp_path / "install" / "pkg" / "lib" / "pkg" / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FAKE_NODE.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "src").mkdir()
    (tmp_path / "params.yaml").write_text("/**:\n  ros__parameters: {}\n")
    return tmp_path


def test_parameter_values_are_yaml_literals():
    assert ros_arg_value(True) == "true" and ros_arg_value(3) == "3" and ros_arg_value(0.5) == "0.5"
    assert ros_arg_value("/tmp/a b") == '"/tmp/a b"' and ros_arg_value("123") == '"123"'  # stays a string
    assert ros_arg_value([1, 2]) == "[1, 2]"
    with pytest.raises(ValueError):
        ros_arg_value(None)
    with pytest.raises(ValueError, match="absolute"):
        NodeSpec("pkg", "fake_node", namespace="robot1")
    assert NodeSpec("pkg", "fake_node", "/robot1").label == "robot1_fake_node"


def test_nodes_start_with_ros_args_and_stop_cleanly(workspace):
    graph = ProcessGraph(workspace / "logs", params_file=workspace / "params.yaml", domain_id=42,
                         workspace_root=workspace)
    with graph:
        node = graph.start(NodeSpec("pkg", "fake_node", "/robot1", params={"seed": 3, "name": "x"},
                                    node_name="exec1"))
        assert graph.wait_for_log(node.label, "READY", 20.0), node.log_tail()
        text = node.log_path.read_text()
        assert ("['--ros-args', '-r', '__ns:=/robot1', '-r', '__node:=exec1', '--params-file', "
                f"'{workspace / 'params.yaml'}', '-p', 'seed:=3', '-p', 'name:=\"x\"']") in text
        assert "domain 42" in text
        with pytest.raises(ValueError, match="already running"):
            graph.start(NodeSpec("pkg", "fake_node", "/robot1"))
    assert node.process.returncode == 0 and "clean exit" in node.log_path.read_text()
    assert graph.nodes == []


def test_a_node_ignoring_sigint_is_terminated(workspace):
    with ProcessGraph(workspace / "logs", workspace_root=workspace) as graph:
        node = graph.start(NodeSpec("pkg", "stubborn_node"))
        assert graph.wait_for_log(node.label, "READY", 20.0)
        codes = graph.stop(timeout=1.0)
    assert "ignoring SIGINT" in node.log_path.read_text()
    assert codes == {"stubborn_node": -15}  # SIGTERM after the SIGINT timeout


def test_kill_and_dead_nodes(workspace):
    with ProcessGraph(workspace / "logs", workspace_root=workspace) as graph:
        node = graph.start(NodeSpec("pkg", "fake_node"))
        assert graph.wait_for_log(node.label, "READY", 20.0)
        graph.kill("fake_node")
        assert node.process.returncode == -9 and graph.nodes == []
        again = graph.start(NodeSpec("pkg", "fake_node"))  # the label is free again
        assert graph.wait_for_log(again.label, "READY", 20.0)
        os.kill(again.process.pid, 9)
        again.process.wait(10)
        assert graph.dead() == [again]


def test_missing_executable_says_how_to_fix_it(workspace):
    graph = ProcessGraph(workspace / "logs", workspace_root=workspace)
    with pytest.raises(FileNotFoundError, match="make setup"):
        graph.start(NodeSpec("pkg", "no_such_node"))
    with pytest.raises(FileNotFoundError, match="parameter file"):
        ProcessGraph(workspace / "logs", params_file=workspace / "nope.yaml", workspace_root=workspace)
