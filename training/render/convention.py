"""MediaPipe's landmark convention, learned from the rendered clips: for each of the 33
landmarks, the weighted mix of the open body's vertices and joints whose projection best
matches what the real PoseLandmarker put on the renders.

    .venv/bin/python -m training.render.convention fit      # → engine/data/landmark_convention.json
    .venv/bin/python -m training.render.convention check    # held-out clips: rules vs learned

Per landmark the candidates are the rest-pose vertices near the rule point
(``engine.body.landmarks.rule_landmark_spec``: 15 cm for the hips, 12 cm for the other limb landmarks, 5 cm for hands
and feet, 4 cm for the face; at most 120, spread by farthest-point sampling, the rule's own
vertices always in) and the joints next to it. The weights are non-negative and add up to 1;
they minimise the image residual in units of the person's box height, linearised the usual way
(for a point x = Σ w_c X_c in the camera, u·z − (K x)_u is linear in w; divided by the rule
point's depth it is the pixel residual), with a small pull toward the rule weights so that a
landmark the renders barely constrain stays where the rule puts it. Two passes: the second
drops rows more than 3× the first pass's median residual (misdetections).

Rows used: MediaPipe found the person, visibility > 0.5, the rule point not occluded, the frame
not left/right swapped (its hips and shoulders closer to the other side's truth), clips of the
fit half (a clip's CMU motion decides its half, so both renders of one motion fall together).
The radii, the 120 candidates and the pull (1e-5 per row: moving a weight of 1 costs what a
0.3 % residual in every row does) are choices of ours, not tuned on any benchmark; a synthetic
test checks that a known convention is recovered.
"""
import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from engine.body.landmarks import MIRROR, PointModel, rule_landmark_spec, spec_matrix, CONVENTION_PATH
from engine.body.model import load_body_model
from engine.estimate.camera import world_to_camera
from engine.body.skeleton import JOINT_INDEX as J, PARENTS, children
from engine.observe import LANDMARK_NAMES, LM

RENDERED = Path("out/rendered")
VIS = 0.5
LIMB = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
MAX_CANDIDATES = 120
PULL = 1e-5


def half_of(clip):
    """'fit' or 'check' for a CMU clip id (about 80 / 20 %, fixed by a hash of the id)."""
    return "check" if int(hashlib.sha1(clip.encode()).hexdigest(), 16) % 5 == 0 else "fit"


def _radius(name):
    if name.endswith("hip"):
        return 0.15
    if any(name.endswith(n) for n in LIMB):
        return 0.12
    if any(k in name for k in ("index", "pinky", "thumb", "heel", "foot")):
        return 0.05
    return 0.04


def _near_joints(name, point, rest):
    """Joints that may carry a share of the landmark: for a limb landmark its own joint, its
    parent and children; otherwise the nearest joint."""
    if any(name.endswith(n) for n in LIMB):
        j = J[name]
        return sorted({j, int(PARENTS[j]), *children()[j]} - {-1})
    return [int(np.argmin(np.linalg.norm(rest - point, axis=1)))]


def _farthest_points(P, k, keep):
    """Indices into P: ``keep`` plus farthest-point samples up to k in all."""
    chosen = list(keep) or [0]
    d = np.min(np.linalg.norm(P[:, None] - P[chosen][None], axis=-1), axis=1)
    while len(chosen) < min(k, len(P)):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(P - P[i], axis=1))
    return np.array(sorted(set(chosen)))


def candidates(body):
    """{landmark: (vertex ids, joint ids, rule weights over vertices then joints)}."""
    v = body.shaped_vertices(None)
    rest = body.J_regressor @ v
    rules = rule_landmark_spec(body)
    out = {}
    for name in LANDMARK_NAMES:
        kind, idx = rules[name]
        point = rest[idx] if kind == "joint" else v[idx].mean(0)
        near = np.flatnonzero(np.linalg.norm(v - point, axis=1) < _radius(name))
        rule_verts = [] if kind == "joint" else list(idx)
        pool = np.union1d(near, rule_verts).astype(np.int64)
        keep = [int(np.flatnonzero(pool == i)[0]) for i in rule_verts]
        vi = pool[_farthest_points(v[pool], MAX_CANDIDATES, keep)]
        ji = np.array(_near_joints(name, point, rest), np.int64)
        w0 = np.zeros(len(vi) + len(ji))
        if kind == "joint":
            w0[len(vi) + list(ji).index(idx)] = 1.0
        else:
            w0[np.searchsorted(vi, idx)] = 1.0 / len(idx)
        out[name] = (vi, ji, w0)
    return out


def _candidate_matrix(cands, num_vertices):
    """One spec_matrix row per candidate (all landmarks' candidates stacked) and each
    landmark's slice of the rows."""
    rows, slices, n = [], {}, 0
    for name in LANDMARK_NAMES:
        vi, ji, _ = cands[name]
        for i in vi:
            r = np.zeros(num_vertices + 24, np.float32)
            r[i] = 1.0
            rows.append(r)
        for j in ji:
            r = np.zeros(num_vertices + 24, np.float32)
            r[num_vertices + j] = 1.0
            rows.append(r)
        slices[name] = slice(n, n + len(vi) + len(ji))
        n += len(vi) + len(ji)
    return np.stack(rows), slices


def swapped_frames(kp, truth):
    """(T,) frames whose hips and shoulders lie closer to the other side's true points."""
    idx = [LM[f"{s}_{n}"] for s in ("left", "right") for n in ("shoulder", "hip")]
    own = np.linalg.norm(kp[:, idx, :2] - truth[:, idx], axis=-1).sum(1)
    other = np.linalg.norm(kp[:, idx, :2] - truth[:, MIRROR[idx]], axis=-1).sum(1)
    return other < own


def clip_rows(z, body, cand_M, every):
    """Per used frame of one clip: camera-frame candidate points, detections, box heights and
    the landmarks' use mask → dict of arrays (frames subsampled by ``every``)."""
    kp = np.asarray(z["keypoints"], np.float64)
    truth = np.asarray(z["landmarks2d"], np.float64)
    valid = np.asarray(z["valid"], bool) & np.isfinite(kp[..., 0]).all(1)
    frames = np.flatnonzero(valid & ~swapped_frames(kp, truth))[::every]
    if len(frames) == 0:
        return None
    pts = PointModel(body, z["betas"], cand_M)(z["poses"][frames], z["trans"][frames])
    E = np.asarray(z["extrinsics"], np.float64)[frames]
    cam = world_to_camera(pts, E)
    box = truth[frames, :, 1].max(1) - truth[frames, :, 1].min(1)
    use = (kp[frames, :, 2] > VIS) & ~np.asarray(z["occluded"], bool)[frames]
    return dict(cam=cam, kp=kp[frames, :, :2], K=np.asarray(z["K"], np.float64)[frames], box=box,
                use=use, depth=np.asarray(z["landmarks_cam"], np.float64)[frames, :, 2])


def gather(paths, body, cands, every=4, log=print):
    """Stack ``clip_rows`` over clip files → dict of arrays (N frames)."""
    cand_M, slices = _candidate_matrix(cands, len(body.v_template))
    parts = []
    t0 = time.time()
    for i, p in enumerate(paths):
        r = clip_rows(np.load(p, allow_pickle=True), body, cand_M, every)
        if r is not None:
            parts.append(r)
        if (i + 1) % 100 == 0:
            log(f"  {i + 1}/{len(paths)} clips read ({time.time() - t0:.0f} s)")
    data = {k: np.concatenate([r[k] for r in parts]) for k in parts[0]}
    data["slices"] = slices
    return data


def design_rows(cam, kp, K, box, depth):
    """(2N, C) linearised residual rows and their targets (zeros) for one landmark: row u is
    Σ_c w_c (u·Z_c − f_x X_c − c_x Z_c) / (depth · box), likewise v."""
    X, Y, Z = cam[..., 0], cam[..., 1], cam[..., 2]
    fx, fy, cx, cy = K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None]
    s = (depth * box)[:, None]
    ru = (kp[:, 0, None] * Z - fx * X - cx * Z) / s
    rv = (kp[:, 1, None] * Z - fy * Y - cy * Z) / s
    return np.concatenate([ru, rv])


def solve_weights(A, w0, pull=PULL):
    """min ‖A w‖² + pull·n·‖w − w0‖² with w ≥ 0, Σ w = 1 (the sum as a heavily weighted row)."""
    n = len(A) // 2
    lam = 1e3 * np.sqrt(max(n, 1))
    a = np.sqrt(pull * max(n, 1))
    M = np.vstack([A, lam * np.ones((1, A.shape[1])), a * np.eye(A.shape[1])])
    b = np.concatenate([np.zeros(len(A)), [lam], a * w0])
    w, _ = nnls(M, b, maxiter=50 * A.shape[1])
    return w / w.sum()


def frame_residuals(A, w):
    """Per-frame residual length (box heights) of weights w on design rows A (2N, C)."""
    r = A @ w
    n = len(r) // 2
    return np.hypot(r[:n], r[n:])


def fit(data, cands, log=print):
    """{landmark: weights over its candidates} and per-landmark row counts."""
    out, counts = {}, {}
    for name in LANDMARK_NAMES:
        l = LM[name]
        sl = data["slices"][name]
        u = data["use"][:, l]
        A = design_rows(data["cam"][u, sl], data["kp"][u, l], data["K"][u], data["box"][u], data["depth"][u, l])
        w0 = cands[name][2]
        w = solve_weights(A, w0)
        n = len(A) // 2
        res = frame_residuals(A, w)
        keep = res < 3 * np.median(res)
        A2 = np.concatenate([A[:n][keep], A[n:][keep]])
        w = solve_weights(A2, w0)
        out[name], counts[name] = w, int(keep.sum())
        log(f"  {name:18s} rows {keep.sum():6d}/{n:6d}  median residual rules "
            f"{np.median(frame_residuals(A2, w0)):.4f} → learned {np.median(frame_residuals(A2, w)):.4f}")
    return out, counts


def home_joint(name, body):
    """The joint a landmark is placed from when it is carried to another body: a limb landmark's
    own joint, else the joint nearest its rule point on the rest pose."""
    if any(name.endswith(n) for n in LIMB):
        return J[name]
    v = body.shaped_vertices(None)
    rest = body.J_regressor @ v
    kind, idx = rule_landmark_spec(body)[name]
    point = rest[idx] if kind == "joint" else v[idx].mean(0)
    return int(np.argmin(np.linalg.norm(rest - point, axis=1)))


def convention_table(body, cands, weights, counts, min_weight=1e-3):
    """The JSON-ready convention: per landmark its home joint, the vertices it mixes (open-body
    id, owning joint, offset from the home joint on the rest pose, weight) and the joints (id,
    weight)."""
    v = body.shaped_vertices(None)
    rest = body.J_regressor @ v
    owner = np.argmax(body.weights, axis=1)
    table = {}
    for name in LANDMARK_NAMES:
        vi, ji, _ = cands[name]
        home = home_joint(name, body)
        w = weights[name].copy()
        w[w < min_weight] = 0.0
        w /= w.sum()
        verts = [dict(vertex=int(i), joint=int(owner[i]), offset=[round(float(x), 5) for x in v[i] - rest[home]],
                      weight=round(float(wi), 5)) for i, wi in zip(vi, w[:len(vi)]) if wi > 0]
        joints = [dict(joint=int(j), weight=round(float(wi), 5)) for j, wi in zip(ji, w[len(vi):]) if wi > 0]
        table[name] = dict(home=int(home), vertices=verts, joints=joints, rows=counts[name])
    height = float(v[:, 1].max() - v[:, 1].min())
    return dict(body=body.name, num_vertices=len(v), body_height=round(height, 5), landmarks=table)


def clip_paths(root, half):
    return [p for p in sorted(Path(root).glob("*.npz")) if not p.name.endswith(".part.npz")
            and half_of(str(np.load(p, allow_pickle=True)["clip"])) == half]


def check(root, every=4, log=print, table=None):
    """Held-out clips: per-landmark median image residual (box heights) with the rule
    convention and with the learned one → {landmark: (rules, learned, frames)}."""
    from engine.body.landmarks import learned_landmark_spec
    body = load_body_model(None)
    paths = clip_paths(root, "check")
    M = {"rules": spec_matrix(rule_landmark_spec(body), len(body.v_template)),
         "learned": spec_matrix(learned_landmark_spec(body, None, table), len(body.v_template))}
    res = {k: [] for k in M}
    use_all = []
    for p in paths:
        z = np.load(p, allow_pickle=True)
        kp = np.asarray(z["keypoints"], np.float64)
        truth = np.asarray(z["landmarks2d"], np.float64)
        valid = np.asarray(z["valid"], bool) & np.isfinite(kp[..., 0]).all(1)
        f = np.flatnonzero(valid & ~swapped_frames(kp, truth))[::every]
        if not len(f):
            continue
        E = np.asarray(z["extrinsics"], np.float64)[f]
        Ks = np.asarray(z["K"], np.float64)[f]
        box = truth[f, :, 1].max(1) - truth[f, :, 1].min(1)
        for k, m in M.items():
            X = PointModel(body, z["betas"], m)(z["poses"][f], z["trans"][f])
            x = np.einsum("tij,tnj->tni", Ks, world_to_camera(X, E))     # per-frame K (zooms)
            uv = x[..., :2] / x[..., 2:]
            res[k].append(np.linalg.norm(uv - kp[f, :, :2], axis=-1) / box[:, None])
        use_all.append((kp[f, :, 2] > VIS) & ~np.asarray(z["occluded"], bool)[f])
    use = np.concatenate(use_all)
    out = {}
    for name in LANDMARK_NAMES:
        l = LM[name]
        r = {k: np.concatenate(v)[:, l][use[:, l]] for k, v in res.items()}
        out[name] = (float(np.median(r["rules"])), float(np.median(r["learned"])), int(use[:, l].sum()))
    log(f"held-out clips {len(paths)}, frames {len(use)} (every {every}th used frame)")
    log(f"{'landmark':18s} {'rules':>7s} {'learned':>7s}  (median residual, % of box height)")
    for name, (a, b, n) in out.items():
        log(f"{name:18s} {100 * a:7.2f} {100 * b:7.2f}  n={n}")
    a = np.mean([v[0] for v in out.values()])
    b = np.mean([v[1] for v in out.values()])
    log(f"{'mean of medians':18s} {100 * a:7.2f} {100 * b:7.2f}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m training.render.convention", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("fit", "check"))
    ap.add_argument("--rendered", default=str(RENDERED))
    ap.add_argument("--every", type=int, default=4, help="use every Nth usable frame (default 4)")
    ap.add_argument("--out", default=str(CONVENTION_PATH))
    a = ap.parse_args(argv)
    if a.command == "fit":
        body = load_body_model(None)
        cands = candidates(body)
        paths = clip_paths(a.rendered, "fit")
        print(f"fit half: {len(paths)} clips; candidates {sum(len(c[0]) + len(c[1]) for c in cands.values())}")
        t0 = time.time()
        data = gather(paths, body, cands, a.every)
        print(f"{len(data['kp'])} frames in {time.time() - t0:.0f} s")
        weights, counts = fit(data, cands)
        table = convention_table(body, cands, weights, counts)
        table["source"] = dict(clips=len(paths), frames=int(len(data["kp"])), every=a.every,
                               command="python -m training.render.convention fit")
        Path(a.out).write_text(json.dumps(table, indent=1) + "\n")
        print(f"wrote {a.out}")
    else:
        check(a.rendered, a.every)


if __name__ == "__main__":
    main()
