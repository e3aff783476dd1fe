#!/usr/bin/env bash
# Run a command inside the workspace environment (venv + ROS 2 + colcon install): scripts/in_env.sh CMD ...
set -eo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$@"
