"""Throughput of the observation front end: detection fps at a processing size, time per stage.

    .venv/bin/python scripts/bench_observe.py [VIDEO] [--max-side 1280] [--frames 120]

Runs the same steps as ``engine.observe.detect_people`` (decode → resize → MediaPipe Tasks
PoseLandmarker, all people → masks/appearance → background homography by DIS flow) and then the
tracker, timing each stage. Default: the demo clip at 720p (longer side 1280).
"""
import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.observe.camera_motion import HomographyEstimator  # noqa: E402
from engine.observe import Detections, MediaPipePoseLandmarker, keypoint_box, mask_size  # noqa: E402
from engine.observe.detect import appearance_histogram  # noqa: E402
from engine.observe.track import track_and_select  # noqa: E402
from engine.video.decode import iter_frames, open_video  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(ROOT / "assets/demo/sports2d_demo.mp4"))
    ap.add_argument("--max-side", type=int, default=1280)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--num-poses", type=int, default=4)
    a = ap.parse_args(argv)
    cap, info = open_video(a.video)
    cap.release()
    W, H = info.width, info.height
    mw, mh = mask_size(W, H)
    t = dict(decode=0.0, detect=0.0, masks_appearance=0.0, camera_motion=0.0, track_select=0.0)
    t_init = time.perf_counter()
    det = MediaPipePoseLandmarker(num_poses=a.num_poses)
    t_init = time.perf_counter() - t_init
    est = HomographyEstimator()
    rows, homs, people_per_frame = [], [], []
    it = iter_frames(a.video, (0, a.frames), max_side=a.max_side)
    size = None
    while True:
        t0 = time.perf_counter()
        try:
            i, ts, bgr = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        people = det.detect_all(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ts)
        t2 = time.perf_counter()
        h, w = bgr.shape[:2]
        size = (w, h)
        small = cv2.resize(bgr, (round(w * 320 / max(w, h)), round(h * 320 / max(w, h))), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        union = np.zeros((mh, mw), np.uint8)
        for ob in people:
            kp = ob.keypoints * np.array([W / w, H / h, 1], np.float32)
            rows.append((len(homs), kp, ob.world, ob.mask, keypoint_box(kp), ob.score,
                         appearance_histogram(hsv, cv2.resize(ob.mask, hsv.shape[1::-1]))))
            union = np.maximum(union, ob.mask)
        t3 = time.perf_counter()
        homs.append(est.update(bgr, cv2.resize(union, (w, h)) > 127))
        t4 = time.perf_counter()
        t["decode"] += t1 - t0
        t["detect"] += t2 - t1
        t["masks_appearance"] += t3 - t2
        t["camera_motion"] += t4 - t3
        people_per_frame.append(len(people))
    det.close()
    T, N = len(homs), len(rows)
    t0 = time.perf_counter()
    dets = Detections(np.arange(T), np.arange(T) / info.fps, np.array(homs), (W, H), info.fps,
                      np.array([r[0] for r in rows]), np.array([r[1] for r in rows]).reshape(N, 33, 3),
                      np.array([r[2] for r in rows]).reshape(N, 33, 3), np.array([r[3] for r in rows]).reshape(N, mh, mw),
                      np.array([r[4] for r in rows]).reshape(N, 4), np.array([r[5] for r in rows]),
                      np.array([r[6] for r in rows]).reshape(N, -1))
    track_and_select(dets)
    t["track_select"] = time.perf_counter() - t0
    total = sum(t.values())
    print(f"{Path(a.video).name}: {T} frames at {size[0]}×{size[1]} (source {W}×{H}), "
          f"{np.mean(people_per_frame):.2f} people/frame, cv2 threads {cv2.getNumThreads()}")
    print(f"detector set-up (bundle build + graph): {t_init:.2f} s")
    print(f"detection fps (detector only): {T / t['detect']:.1f}   "
          f"front end fps (all stages): {T / total:.1f}")
    for k, v in t.items():
        print(f"  {k:17s} {1000 * v / T:7.1f} ms/frame  {100 * v / total:5.1f} %")


if __name__ == "__main__":
    main()
