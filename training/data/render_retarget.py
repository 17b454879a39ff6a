"""Figure of a retargeted clip: ``python -m training.data.render_retarget 124_01 docs/img/retarget_124_01.png``.

Three frames side by side (matplotlib 3D): the open body's mesh points (grey), its SMPL joints
and bones (blue) and the scaled CMU joints (red), Z-up world.
"""
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from engine.body.skeleton import PARENTS  # noqa: E402

from training.data.bvh import read_bvh  # noqa: E402
from training.data.bvh_to_smpl import clip_table, default_body, retarget_bvh  # noqa: E402


def main(clip="124_01", out="docs/img/retarget_124_01.png", frames=None):
    cmu = Path(__file__).resolve().parents[3] / "shared" / "data" / "cmu"
    row = {r["clip"]: r for r in clip_table(cmu)}[clip]
    body = default_body()
    res = retarget_bvh(read_bvh(cmu / row["path"]), body)
    T = len(res["poses"])
    frames = frames or [int(T * f) for f in (0.35, 0.55, 0.7)]
    verts = body.vertices(res["poses"][frames], res["betas"], res["trans"][frames])
    fig = plt.figure(figsize=(15, 5.5))
    for k, t in enumerate(frames):
        ax = fig.add_subplot(1, 3, k + 1, projection="3d")
        v = verts[k][::6]
        ax.scatter(v[:, 0], v[:, 1], v[:, 2], s=0.3, c="0.6", alpha=0.4)
        j = res["joints"][t]
        for c, p in enumerate(PARENTS):
            if p >= 0:
                ax.plot(*zip(j[p], j[c]), c="tab:blue", lw=2)
        cj = res["cmu_joints"][t]
        ok = np.isfinite(cj[:, 0])
        ax.scatter(cj[ok, 0], cj[ok, 1], cj[ok, 2], c="tab:red", s=18, depthshade=False)
        ctr = j[0]
        for setl, c0 in ((ax.set_xlim, ctr[0]), (ax.set_ylim, ctr[1])):
            setl(c0 - 0.9, c0 + 0.9)
        ax.set_zlim(0, 1.9)
        ax.set_box_aspect((1, 1, 1.05))
        ax.view_init(elev=12, azim=-60)
        ax.set_title(f"{clip} frame {t} (30 fps)")
        ax.set_xlabel("x"); ax.set_ylabel("y"); ax.set_zlabel("z (up)")
    fig.suptitle("CMU → SMPL-24 retargeting on the open body: SMPL bones (blue), scaled CMU joints (red)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
