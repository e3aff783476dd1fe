# Source this file (bash) to use the workspace: `source scripts/env.sh`.
# Activates .venv, ROS 2 Jazzy (system install or the PyPI wheels inside .venv) and the colcon install/.
# Made by scripts/setup.sh; run `make setup` first.
_grasp_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$_grasp_root/install/setup.bash" ]; then
  echo "scripts/env.sh: the workspace is not built yet; run 'make setup' in $_grasp_root" >&2
  return 1 2>/dev/null || exit 1
fi
if [ -f /opt/ros/jazzy/setup.bash ]; then
  # shellcheck disable=SC1091
  source /opt/ros/jazzy/setup.bash
fi
# shellcheck disable=SC1091
source "$_grasp_root/.venv/bin/activate"
if [ ! -f /opt/ros/jazzy/setup.bash ]; then
  # The wheels install their share/ (ament index) into the venv prefix.
  case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
fi
# shellcheck disable=SC1091
source "$_grasp_root/install/setup.bash"
# The packages' commands (grasp-experiments, grasp-pretrain, propose_grasp_client, the node executables) are
# installed in install/<pkg>/lib/<pkg>/, where `ros2 run <pkg> <command>` finds them; put them on PATH too, so the
# README's commands run as written. Appended: they never shadow a command the system already has.
for _grasp_pkg in "$_grasp_root"/install/*/; do
  _grasp_bin="${_grasp_pkg}lib/$(basename "$_grasp_pkg")"
  if [ -d "$_grasp_bin" ]; then
    case ":$PATH:" in *":$_grasp_bin:"*) ;; *) PATH="$PATH:$_grasp_bin";; esac
  fi
done
export PATH
unset _grasp_pkg _grasp_bin
# Headless MuJoCo rendering (EGL; OSMesa also works: MUJOCO_GL=osmesa).
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
unset _grasp_root
# Torch's OpenMP threads spin while waiting by default; with several nodes sharing few cores that made
# inference ~4x slower here (benchmarks/results/inference.md). Passive waiting shares the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
