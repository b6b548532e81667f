#!/usr/bin/env bash
# ./run.sh demo   set everything up, then run the simulated demo
# ./run.sh test   set everything up, then run the test suite (what CI runs)
# ./run.sh setup  only set up;  ./run.sh bench  run every benchmark
# Every ROS process started from here discovers peers on loopback only, on a private domain id.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tools/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((42 + $$ % 58))}
cmd=${1:-demo}; shift || true
case "$cmd" in
  demo)  exec .venv/bin/meta-robot demo "$@" ;;
  test)  .venv/bin/ruff check . && exec .venv/bin/python -m pytest "$@" ;;
  bench) for b in benchmarks/bench_*.py; do .venv/bin/python "$b" "$@"; done ;;
  setup) ;;
  *) echo "usage: ./run.sh demo|test|bench|setup [args]" >&2; exit 2 ;;
esac
