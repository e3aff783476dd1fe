"""Camera to heightmap node: synchronises RealSense-style colour and aligned depth, projects them into the workspace
and publishes grasp_interfaces/Heightmap."""
