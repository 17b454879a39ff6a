"""How far the follow pass's crop landmarks lie from R1's reference, beside the full-frame pass's.

    .venv/bin/python scripts/crop_landmarks_r1.py [--crop-tracking] [--cameras cam02,cam03] [--r1]

For each R1 camera: the subject's 2D keypoints as the estimator gets them (gap recovery and the
left/right relabelling done) from the follow pass (crops, ``engine.observe.follow``) and from the
full-frame pass (``--no-follow``), each against the other three cameras' triangulated reference
projected into this camera (``training.bench.r1``'s reference), in units of the reference's 2D
height: the median and p90 per landmark group, and the median second difference over frames
(how smooth the keypoints are; the reference's own smoothness is not in it).

``--crop-tracking`` landmarks the crops in MediaPipe's video mode (``follow.CROP_TRACKING``, the
default until 2026-12-08) instead of IMAGE mode. ``--r1`` also runs R1's default row on the
chosen cameras, in an empty cache of its own. The follow pass is run afresh (not read from
the cache); the full-frame detections are read from it.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crop-tracking", action="store_true", help="crops in MediaPipe's video mode")
    ap.add_argument("--cameras", default="cam01,cam02,cam03,cam04")
    ap.add_argument("--r1", action="store_true", help="also R1's default row on these cameras")
    args = ap.parse_args(argv)

    from engine.observe import LM
    from engine.observe import follow
    from engine.observe.lr_swaps import fix_left_right_swaps
    from engine.observe.redetect import recover_gaps_cached
    from engine.observe.track import track_and_select
    from engine.pipeline import PipelineOptions, detect, observe_followed
    from training.bench import r1
    from training.eval import multiview as mv
    from training.eval import pose2sim_demo as demo
    from training.eval.pose2sim_demo import DATA, VIS

    if not (Path(DATA) / "videos").is_dir():
        print(f"error: R1's videos are not in {DATA} (scripts/measure_detector_noise_multiview.py --fetch)")
        return 2
    follow.CROP_TRACKING = bool(args.crop_tracking)
    cams = demo.load_calibration(DATA)
    names = [c.name for c in cams]
    uv, vis, _ = r1.observe_views(DATA, names)
    swaps = demo.lr_swaps(cams, uv, vis)
    vis_ref = np.where(swaps[..., None], 0.0, vis)
    refined, _ = mv.refine_rotations(cams, uv, vis_ref, VIS, max_deg=1.0)
    X = mv.leave_one_out_points(refined, uv, vis_ref, VIS)
    groups = {g: [LM[f"{s}_{g}"] for s in ("left", "right")] for g in r1.GROUPS}
    limbs = sum(groups.values(), [])
    mode = "video mode (tracking)" if args.crop_tracking else "IMAGE mode"
    print(f"crops landmarked in {mode}; error / reference 2D height, median / p90\n")
    print("| camera | pass | all | " + " | ".join(groups) + " | 2D accel median |")
    print("|---|---|---|" + "---|" * len(groups) + "---|")
    chosen = args.cameras.split(",")
    for v, c in enumerate(names):
        if c not in chosen:
            continue
        video = Path(DATA) / "videos" / f"{c}.mp4"
        ref2d = mv.project(refined[v], X[v])[0]
        T = len(ref2d)
        h = np.nanmax(ref2d[..., 1], 1) - np.nanmin(ref2d[..., 1], 1)
        for name in ("follow", "full frame"):
            opts = PipelineOptions(use_cache=name != "follow")
            if name == "follow":
                obs, _, searched = observe_followed(video, opts)
            else:
                obs, searched = track_and_select(detect(video, opts)[0]), None
            recover_gaps_cached(video, obs, max_gap_s=opts.recover_gaps, use_cache=False, searched=searched)
            fix_left_right_swaps(obs)
            kp = obs.keypoints[:T, :, :2].astype(np.float64)
            e = np.linalg.norm(kp - ref2d, axis=-1) / h[:, None]
            e[~obs.valid[:T]] = np.nan
            acc = np.linalg.norm(kp[2:] - 2 * kp[1:-1] + kp[:-2], axis=-1)[:, limbs] / h[1:-1, None]
            cells = [f"{np.nanmedian(e[:, idx]):.4f} / {np.nanpercentile(e[:, idx], 90):.4f}"
                     for idx in [limbs] + list(groups.values())]
            print(f"| {c} | {name} | " + " | ".join(cells) + f" | {np.nanmedian(acc):.4f} |")
    if args.r1:
        os.environ["MOCAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="crop_landmarks_r1_")
        res, _ = r1.evaluate(["default"], chosen, log=lambda *a: None)
        for kind in ("smpl", "limbs", "landmarks"):
            m = np.mean([res["default"][c][kind]["mpjpe"] for c in chosen])
            pa = np.mean([res["default"][c][kind]["pa_mpjpe"] for c in chosen])
            per = ", ".join(f"{c} {1000 * res['default'][c][kind]['pa_mpjpe']:.1f}" for c in chosen)
            print(f"R1 default, {kind}: MPJPE {1000 * m:.1f} / PA-MPJPE {1000 * pa:.1f} mm ({per})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
