"""A stand-in node for the launcher's tests: takes ROS arguments, says it is up, sleeps until stopped.
Started under a node name beginning with ``crash`` it fails at start-up instead (exit code 3)."""

import sys
import time

if __name__ == "__main__":
    if any(arg.startswith("__node:=crash") for arg in sys.argv):
        print("boom: a simulated start-up failure", flush=True)
        sys.exit(3)
    print("up", flush=True)
    time.sleep(600)
