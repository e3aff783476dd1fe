"""Executor node: heightmap -> /propose_grasp -> execute -> reward -> experience loop, with a simulated (grasp_sim
services) and a MoveIt (UR3) backend."""
