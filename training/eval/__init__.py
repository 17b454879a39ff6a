"""Scoring tools used by the benchmarks, never shipped: metrics (MPJPE, PA-MPJPE, accel, skate),
multiview (calibrated multi-camera references for R1) and overlay (skeletons drawn on video)."""
