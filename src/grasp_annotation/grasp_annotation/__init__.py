"""Key-point datasets for pretraining: capture heightmaps, annotate them in a local web page, make the
simulator's auto-annotated set, inspect a dataset. The dataset format is docs/design.md's `grasp-keypoints`."""
