"""Both people of a composite clip followed (``engine.observe.follow``) and drawn on the same
frames: each person's followed keypoints in their own colour, the ground-truth boxes thin.

    .venv/bin/python scripts/overlay_crossing.py tests/data/composites/crossing.mp4 -o out.png --frames 38,40,41,43
    .venv/bin/python scripts/overlay_crossing.py tests/data/composites/broadcast_like.mp4 -o out.png \
        --frames 10,30,45,60 --subject pitcher --expect 0

The subject of each run is picked by a point at the centre of its ground-truth box on frame 0
(the clip's JSON beside it), or with ``--subject`` by a rule; a frame where a person was not
kept shows no keypoints for them.
"""
import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.observe.follow import observe_video  # noqa: E402
from engine.video.decode import iter_frames  # noqa: E402
from training.eval.overlay import draw_landmarks  # noqa: E402

COLOURS = [(0, 200, 255), (255, 80, 200), (80, 255, 80), (255, 200, 0)]  # BGR per person


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--frames", required=True, help="comma list of frame numbers")
    ap.add_argument("--subject", default=None, help="follow one person by this rule (e.g. pitcher) instead")
    ap.add_argument("--expect", type=int, default=0, help="with --subject: the person it should find (colour)")
    a = ap.parse_args(argv)
    video = Path(a.video)
    meta = json.loads(video.with_suffix(".json").read_text())
    frames = [int(f) for f in a.frames.split(",")]
    followed = []
    if a.subject:  # one run, by a rule: drawn in the colour of the person it should be
        obs, *_ = observe_video(video, (0, meta["frames"]), subject=a.subject)
        followed = [obs if k == a.expect else None for k in range(len(meta["per_frame"][0]["people"]))]
    for pid, person in enumerate(meta["per_frame"][0]["people"]):
        if a.subject:
            break
        b = np.array(person["box"], float)
        obs, *_ = observe_video(video, (0, meta["frames"]), subject="point",
                                subject_point=tuple(0.5 * (b[:2] + b[2:])))
        followed.append(obs)
    tiles = []
    for i, _, bgr in iter_frames(video, only=set(frames)):
        img = bgr.copy()
        for pid, person in enumerate(meta["per_frame"][i]["people"]):
            x0, y0, x1, y1 = (int(v) for v in person["box"])
            cv2.rectangle(img, (x0, y0), (x1, y1), COLOURS[pid % 4], 1)
        for pid, obs in enumerate(followed):
            if obs is None:
                continue
            t = int(np.flatnonzero(obs.frame_index == i)[0])
            if obs.valid[t]:
                draw_landmarks(img, obs.keypoints[t], COLOURS[pid % 4])
        boxes = np.array([p["box"] for p in meta["per_frame"][i]["people"]], float)
        (x0, y0), (x1, y1) = boxes[:, :2].min(0), boxes[:, 2:].max(0)
        g = 0.3 * (y1 - y0)
        x0, y0 = int(max(0, x0 - g)), int(max(0, y0 - g))
        x1, y1 = int(min(img.shape[1], x1 + g)), int(min(img.shape[0], y1 + g))
        tile = cv2.resize(img[y0:y1, x0:x1], None, fx=400 / (y1 - y0), fy=400 / (y1 - y0))
        cv2.putText(tile, f"frame {i}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        tiles.append(tile)
    width = max(t.shape[1] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT) for t in tiles]
    cv2.imwrite(a.output, np.hstack(tiles))
    print(a.output)


if __name__ == "__main__":
    main()
