"""Learned components trained from recorded episodes: success classifiers (and, later, policies).

Pure PyTorch/numpy cores; no rclpy here. Nodes that serve these models wrap them elsewhere.
"""
