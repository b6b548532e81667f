"""Episode recording: rosbag2 (MCAP) folders with episode metadata, written and read without ROS."""
