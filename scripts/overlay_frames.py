"""Draw Motion files over their video: the body's projected skeleton (green, red joints) and the
detected keypoints (yellow), one row per Motion, one cropped tile per frame.

    .venv/bin/python scripts/overlay_frames.py A.npz[,B.npz ...] -o out.png --frames 5,12,70,190

Each tile is cropped around the detected person, so a body standing beside them shows.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.motion import load_motion  # noqa: E402
from training.eval.overlay import draw_skeleton, projected_joints  # noqa: E402
from engine.video.decode import iter_frames  # noqa: E402


def tile(img, motion, t, size=(300, 400), labels=None):
    kp = motion.keypoints2d[t]
    ok = kp[:, 2] > 0.5
    img = img.copy()
    if motion.valid[t]:
        draw_skeleton(img, projected_joints(motion, t))
    for x, y, v in kp:
        if v > 0.5:
            cv2.circle(img, (int(x), int(y)), 4, (0, 255, 255), -1, cv2.LINE_AA)
    if ok.sum() >= 2:
        (x0, y0), (x1, y1) = kp[ok, :2].min(0), kp[ok, :2].max(0)
        pad = 0.35 * (y1 - y0)
        img = img[max(0, int(y0 - pad)):int(y1 + pad), max(0, int(x0 - pad)):int(x1 + pad)]
    img = cv2.resize(img, size)
    if labels:
        cv2.rectangle(img, (0, 0), (size[0], 30), (0, 0, 0), -1)
        cv2.putText(img, labels, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("motions", help="comma-separated Motion files (one row each)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--frames", required=True, help="comma-separated frame numbers (of the Motion)")
    ap.add_argument("--video", default=None, help="video (default: each Motion's source)")
    a = ap.parse_args(argv)
    frames = [int(f) for f in a.frames.split(",")]
    rows = []
    for path in a.motions.split(","):
        m = load_motion(path)
        first = int(m.source.get("frame_range", [0])[0])
        video = a.video or m.source["video"]
        imgs = {i - first: b for i, _, b in iter_frames(video, (first + min(frames), first + max(frames) + 1))}
        rep = m.reprojection
        rows.append(np.concatenate([tile(imgs[t], m, t, labels=f"{Path(path).stem} frame {t}: "
                                         + (f"{rep[t]:.1f} %" if np.isfinite(rep[t]) else "-"))
                                    for t in frames], 1))
    cv2.imwrite(a.out, np.concatenate(rows, 0))
    print(a.out)


if __name__ == "__main__":
    main()
