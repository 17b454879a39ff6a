"""The Pose2Sim ``Demo_SinglePerson`` clip (4 calibrated cameras): fetch, calibration, the
product's detections per view, the 4-view reprojection check and left/right-swap detection.

Shared by the R1 benchmark (``training.bench.r1``), the detector-noise measurement
(``scripts/measure_detector_noise_multiview.py``) and the focal check (``scripts/measure_focal.py``).
The data (BSD-3-Clause, © perfanalytics / David Pagnon) is not shipped: ``fetch`` downloads the
pose2sim wheel with pip and extracts only the 4 videos, the calibration and the licence.
"""
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from engine.observe import LANDMARK_NAMES
from training.eval import multiview as mv

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "out" / "pose2sim_demo"
P2S_VERSION = "0.10.49"
DEMO_PREFIX = "Pose2Sim/Demo_SinglePerson/"
CAMS = ("cam01", "cam02", "cam03", "cam04")
VIS = 0.5          # a landmark counts in a view when its visibility is above this


def fetch(data=DATA, wheel=None):
    """pip download pose2sim (no deps) and extract the demo's videos, calibration and LICENSE."""
    data = Path(data)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", f"pose2sim=={P2S_VERSION}",
                            "--no-deps", "--only-binary=:all:", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("pose2sim-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            for n in z.namelist():
                if n.startswith(DEMO_PREFIX + "videos/") and n.endswith(".mp4"):
                    dst = data / "videos" / Path(n).name
                elif n == DEMO_PREFIX + "calibration/Calib.qca.txt":
                    dst = data / "calibration" / "Calib.qca.txt"
                elif n.endswith("licenses/LICENSE") or n.endswith("dist-info/LICENSE"):
                    dst = data / "LICENSE"
                else:
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                with z.open(n) as src, open(dst, "wb") as out:
                    shutil.copyfileobj(src, out)
    (data / "SOURCE.txt").write_text(
        f"Extracted from the pose2sim=={P2S_VERSION} wheel (PyPI), {DEMO_PREFIX}: videos/ and "
        "calibration/Calib.qca.txt. BSD-3-Clause, see LICENSE. Not part of this repository.\n")
    print(f"fetched into {data}: " + ", ".join(sorted(p.name for p in data.rglob("*") if p.is_file())))


def video_sizes(data=DATA):
    """{camera: (width, height, frame count, fps)} of the demo's videos."""
    import cv2
    out = {}
    for c in CAMS:
        cap = cv2.VideoCapture(str(Path(data) / "videos" / f"{c}.mp4"))
        out[c] = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                  int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS)))
        cap.release()
    return out


def load_calibration(data=DATA, **conv):
    """The four cameras (``multiview.Camera``, in ``CAMS`` order) from the .qca file, read with
    ``multiview.QCA_CONVENTION`` (``conv`` overrides its keys)."""
    sizes = {c: s[:2] for c, s in video_sizes(data).items()}
    text = (Path(data) / "calibration" / "Calib.qca.txt").read_text()
    opts = dict(mv.QCA_CONVENTION)
    opts.update(conv)
    cams = mv.read_qca(text, video_sizes=sizes, **opts)
    by = {c.name: c for c in cams}
    return [by[c] for c in CAMS]


def detect_views(data=DATA):
    """Run the product's detector (engine.pipeline.detect, default options) on each view and keep
    the largest person per frame → uv (V,T,33,2), vis (V,T,33), world (V,T,33,3), box_h (V,T)."""
    from engine.pipeline import PipelineOptions, detect
    opts = PipelineOptions()
    per = []
    for c in CAMS:
        dets, info = detect(Path(data) / "videos" / f"{c}.mp4", opts)
        per.append(dets)
    T = min(d.num_frames for d in per)
    V = len(per)
    uv = np.full((V, T, 33, 2), np.nan)
    vis = np.zeros((V, T, 33))
    world = np.full((V, T, 33, 3), np.nan)
    box_h = np.full((V, T), np.nan)
    for v, d in enumerate(per):
        area = (d.bbox[:, 2] - d.bbox[:, 0]) * (d.bbox[:, 3] - d.bbox[:, 1])
        for f in range(T):
            i = np.flatnonzero(d.frame_of == f)
            if len(i) == 0:
                continue
            i = i[np.argmax(area[i])]
            uv[v, f] = d.keypoints[i, :, :2]
            vis[v, f] = d.keypoints[i, :, 2]
            world[v, f] = d.world[i]
            box_h[v, f] = d.bbox[i, 3] - d.bbox[i, 1]
    return dict(uv=uv, vis=vis, world=world, box_h=box_h, frames=[d.num_frames for d in per])


def swap_index():
    """Landmark index with left and right exchanged (33,)."""
    sw = np.arange(33)
    for i, n in enumerate(LANDMARK_NAMES):
        for a, b in (("left", "right"), ("right", "left")):
            if n.startswith(a + "_"):
                sw[i] = LANDMARK_NAMES.index(b + n[len(a):])
    return sw


def reprojection_check(cams, uv, vis):
    """Triangulate from all views (weights = visibility > VIS) and reproject into each view.
    → dict with the median error per view, per frame (pooled) and overall (pixels)."""
    w = np.where(vis > VIS, vis, 0.0)
    X = mv.triangulate(cams, uv, w)
    e = np.stack([np.linalg.norm(mv.project(c, X)[0] - uv[v], axis=-1) for v, c in enumerate(cams)])
    e[w <= 0] = np.nan
    return dict(median_px=float(np.nanmedian(e)), per_view_px=np.nanmedian(e, axis=(1, 2)).tolist(),
                per_frame_px=np.nanmedian(e, axis=(0, 2)).tolist(),
                p90_px=float(np.nanpercentile(e, 90)), X=X)


def lr_swaps(cams, uv, vis):
    """(V,T) True where the view's detection is left/right swapped: swapping its sides lowers the
    median error against the other views' reference by more than half."""
    sw = swap_index()
    ref = mv.leave_one_out(cams, uv, vis, VIS)
    e = np.linalg.norm(uv - ref, axis=-1)
    es = np.linalg.norm(uv[:, :, sw] - ref, axis=-1)
    m = vis > VIS
    a = np.nanmedian(np.where(m, e, np.nan), axis=2)
    b = np.nanmedian(np.where(m[:, :, sw], es, np.nan), axis=2)
    return (b < 0.5 * a) & np.isfinite(a)
