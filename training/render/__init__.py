"""Rendered observations: the open body rendered doing CMU motions (``scene``, ``raster``,
``appearance``), the real MediaPipe PoseLandmarker run on the renders and stored with the truth
(``dataset``), and the detections' error statistics against that truth (``stats``)."""
