"""Pure types and maths shared by every part of the stack (no ROS): the observation schema."""
