"""docker/: checked statically (no Docker engine where this project is tested).

compose substitutes ${VAR} in the whole file before it does anything, so a required variable (${VAR:?...}) there
breaks `docker compose build` and `up sim` for anyone without it; the build context must not carry a host's
colcon build or venv into the image.
"""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"


def compose_variables(text: str) -> list[str]:
    """The ${...} references compose itself substitutes ($$ is an escaped, literal $)."""
    return re.findall(r"(?<!\$)\$\{([^}]*)\}", text.replace("$$", ""))


def test_compose_needs_no_variable_to_build_or_run_the_simulation():
    text = COMPOSE.read_text()
    for reference in compose_variables(text):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*:?-.*", reference), \
            f"${{{reference}}} has no default: compose fails without it (escape it as $${{...}} for the container)"
    services = yaml.safe_load(text)["services"]
    assert {"sim", "real", "dry-run"} <= set(services)
    for name, service in services.items():
        build = service.get("build")
        assert build and (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file(), f"{name}: no build"
        assert service["image"] == "grasp-learning:jazzy"


def test_real_service_reads_robot_ip_in_the_container():
    real = yaml.safe_load(COMPOSE.read_text())["services"]["real"]
    command = " ".join(real["command"])
    assert "real_ur3.launch.py" in command and "robot_ip:=" in command
    assert "${ROBOT_IP:?" in command  # after compose's $$ -> $: the container's shell asks for it
    assert "ROBOT_IP" in real["environment"]
    dry = " ".join(yaml.safe_load(COMPOSE.read_text())["services"]["dry-run"]["command"])
    assert "use_mock_hardware:=true" in dry and "ROBOT_IP" not in dry


def test_build_context_leaves_host_builds_out():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {"build", "install", "log", ".venv"} <= ignored


def test_dockerfile_installs_the_packages_dependencies_with_rosdep():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert "rosdep install --from-paths src" in text and "GRASP_REAL_ROBOT=1" in text
    assert text.index("rosdep install") < text.index("make setup")
