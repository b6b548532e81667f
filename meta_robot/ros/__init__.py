"""ROS 2 adapters: message conversion, QoS, parameters, node entry, and the processes of a graph."""
