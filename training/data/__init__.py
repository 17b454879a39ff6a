"""Data for training and evaluation: real motion capture turned into synthetic observations."""
