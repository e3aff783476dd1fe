"""Affordance inference node: holds the grasp Q-network, serves /propose_grasp and publishes affordance maps, grasp
markers and a coloured point cloud for RViz."""
