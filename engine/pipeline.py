"""One clip through the engine: decode → observe → estimate → Motion.

``run`` is the single entry point shared by the CLI, the Blender add-on and batch jobs.
Progress goes to ``progress(fraction, message)``; a callback returning False cancels the run
(``Cancelled`` is raised and nothing is written).
"""
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .body.model import load_body_model
from .errors import Cancelled, EngineError
from .motion import Motion
from .observe import observe_frames
from .video import iter_frames, open_video

ESTIMATORS = ("baseline",)


@dataclass
class PipelineOptions:
    device: str = "auto"              # auto | gpu | cpu (onnxruntime execution provider)
    smoothing: str = "light"          # none | light | animation | analysis (clean-motion stage)
    body_model_path: str | None = None  # a user's SMPL .pkl/.npz; None = the open body
    frame_range: tuple | None = None  # (first, last_exclusive) frame indices
    focal: float | None = None        # focal length in pixels; None = default_intrinsics' guess
    estimator: str = "baseline"


def _reporter(progress):
    def report(fraction, message):
        if progress is not None and progress(float(min(max(fraction, 0.0), 1.0)), message) is False:
            raise Cancelled("cancelled")
    return report


def run(video_path, options=None, progress=None, detector=None):
    """Estimate the motion of the person in ``video_path``; returns a Motion (not yet saved)."""
    options = options or PipelineOptions()
    if options.estimator not in ESTIMATORS:
        raise EngineError(f"unknown estimator '{options.estimator}' (choose from {', '.join(ESTIMATORS)})")
    report = _reporter(progress)
    cap, info = open_video(video_path)
    cap.release()
    first, last = options.frame_range or (0, info.frame_count or None)
    if last is not None and last <= first:
        raise EngineError(f"empty frame range {first}–{last}")
    expected = (last - first) if last else None
    body = load_body_model(options.body_model_path)
    report(0.0, "detecting the person")

    def on_frame(n):
        report(0.9 * n / expected if expected else 0.0, f"detecting: frame {n}" + (f"/{expected}" if expected else ""))

    obs = observe_frames(iter_frames(video_path, (first, last)), (info.width, info.height), info.fps,
                         detector=detector, progress=on_frame)
    if obs.num_frames == 0:
        raise EngineError(f"{Path(video_path).name}: no frames could be decoded")
    if not obs.valid.any():
        raise EngineError(f"{Path(video_path).name}: no person found in any of {obs.num_frames} frames")
    report(0.9, "fitting the body")
    from . import baseline
    fields = baseline.fit(obs, body, focal=options.focal)
    report(1.0, "done")
    return Motion(fps=obs.fps, keypoints2d=obs.keypoints, frame_size=list(obs.frame_size),
                  body_model=body.name, estimator=options.estimator, engine_version=__version__,
                  source={"video": str(Path(video_path).resolve()),
                          "frame_range": [first, first + obs.num_frames],
                          "timestamps_s": [round(float(t), 6) for t in obs.timestamps]},
                  **fields).astype_file()
