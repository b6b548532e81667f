"""A stand-in node for the launcher's tests: takes ROS arguments, says it is up, sleeps until stopped."""

import time

if __name__ == "__main__":
    print("up", flush=True)
    time.sleep(600)
