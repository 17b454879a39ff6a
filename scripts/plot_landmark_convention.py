"""Draw the open body's 33 landmarks by the rules and by the learned convention, rest pose,
front and side: docs/img/landmark_convention.png.

    .venv/bin/python scripts/plot_landmark_convention.py
"""
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.body.landmarks import CONVENTIONS, LandmarkModel  # noqa: E402
from engine.body.model import load_body_model  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "landmark_convention.png"


def main():
    body = load_body_model(None)
    v = body.shaped_vertices(None)
    pts = {c: LandmarkModel(body, None, c)(np.zeros((1, 72)))[0] for c in CONVENTIONS}
    fig, axes = plt.subplots(1, 4, figsize=(16, 8), gridspec_kw=dict(width_ratios=[2, 1, 1.2, 1.2]))
    views = [("front (x left, y up)", 0, 1, None), ("side (z forward, y up)", 2, 1, None),
             ("hips and knees, front", 0, 1, (-0.3, 0.3, -0.55, 0.1)),
             ("shoulders and head, front", 0, 1, (-0.3, 0.3, 0.25, 0.75))]
    for ax, (title, a, b, box) in zip(axes, views):
        ax.scatter(v[::3, a], v[::3, b], s=0.3, c="0.8")
        for c, col in (("rules", "tab:red"), ("learned", "tab:green")):
            ax.scatter(pts[c][:, a], pts[c][:, b], s=14, c=col, label=c, zorder=3)
        for p, q in zip(pts["rules"], pts["learned"]):
            ax.plot([p[a], q[a]], [p[b], q[b]], c="k", lw=0.6, zorder=2)
        ax.set_aspect("equal")
        ax.set_title(title)
        if box:
            ax.set_xlim(box[0], box[1])
            ax.set_ylim(box[2], box[3])
    axes[0].legend(loc="lower right")
    fig.suptitle("MediaPipe's landmarks on the open body: the rules (red) and the convention learned from "
                 "the detector on renders (green)")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
