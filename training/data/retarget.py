"""CMU BVH (the ``bvh/`` layout, 31 joints) → SMPL-24 rotations on a SMPL-layout body.

Method (global-rotation transfer with rest-pose alignment):
1. FK of the BVH gives each CMU joint's global rotation Gc_j(t) and position (file units,
   Y up). Units: 1 CMU unit = 1/0.45 inch = 0.056444 m. World: Y-up → Z-up by
   C = [[1,0,0],[0,0,-1],[0,1,0]] (x stays, CMU's +Z (forward) becomes −Y... i.e. the subject
   at rest faces −Y in the Z-up world, which is the AMASS/Blender convention for a front view).
2. Frame 0 of every CMU file is a synthetic T-pose facing +Z with the subject's left at +X —
   SMPL's canonical rest frame. Each SMPL joint j takes the global rotation of one CMU joint
   (``CMU_MAP``) composed with a constant rest offset: Gs_j(t) = C·Gc_j(t)·Gc_j(0)ᵀ·A_j, where
   A_j is the smallest rotation turning the SMPL rest bone (j → its child) onto the CMU bone at
   frame 0. So after retargeting every SMPL bone points where the CMU bone points.
3. Root translation: the SMPL hip midpoint follows the CMU hip-joint midpoint, scaled by
   r = SMPL leg length / CMU leg length (so strides and jumps fit the SMPL legs; the floor
   stays at z = 0).
4. Shape: ``fit_betas`` fits the body's shape coefficients to the subject's T-pose bone lengths
   (a no-op for a body without a shape space).
Frame 0 (the T-pose) is dropped; 120 fps is resampled to 30 fps by taking every 4th frame
(``resample_rotations`` slerps for other rates).
"""
import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation, Slerp

from engine.body.kinematics import forward_kinematics, matrix_to_axis_angle
from engine.body.skeleton import JOINT_INDEX as J, JOINT_NAMES, NUM_JOINTS, PARENTS
from engine.geometry import minimal_rotation

from .bvh import read_bvh

CMU_UNIT_M = 0.0254 / 0.45         # 0.056444 m
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])

# CMU captured no fingers: their channels are ignored (the hand bone follows the Hand joint).
FINGER_JOINTS = ("LeftFingerBase", "LeftHandIndex1", "LThumb", "RightFingerBase", "RightHandIndex1", "RThumb")

# SMPL joint → CMU joint whose global rotation it takes.
CMU_MAP = {
    "pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Neck",
    "neck": "Neck1", "head": "Head",
}
for _s, _c in (("left", "Left"), ("right", "Right")):
    CMU_MAP.update({f"{_s}_hip": f"{_c}UpLeg", f"{_s}_knee": f"{_c}Leg", f"{_s}_ankle": f"{_c}Foot",
                    f"{_s}_foot": f"{_c}ToeBase", f"{_s}_collar": f"{_c}Shoulder",
                    f"{_s}_shoulder": f"{_c}Arm", f"{_s}_elbow": f"{_c}ForeArm",
                    f"{_s}_wrist": f"{_c}Hand", f"{_s}_hand": f"{_c}Hand"})

# CMU bone (from, to) that each SMPL bone (joint → child) is aligned with at rest.
CMU_BONE = {"spine1": ("LowerBack", "Spine"), "spine2": ("Spine", "Spine1"),
            "spine3": ("Neck", "Neck1"), "neck": ("Neck1", "Head"), "head": ("Head", "Head_end")}
SMPL_CHILD = {"spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head"}
for _s, _c in (("left", "Left"), ("right", "Right")):
    CMU_BONE.update({f"{_s}_hip": (f"{_c}UpLeg", f"{_c}Leg"), f"{_s}_knee": (f"{_c}Leg", f"{_c}Foot"),
                     f"{_s}_ankle": (f"{_c}Foot", f"{_c}ToeBase"),
                     f"{_s}_collar": (f"{_c}Shoulder", f"{_c}Arm"),
                     f"{_s}_shoulder": (f"{_c}Arm", f"{_c}ForeArm"),
                     f"{_s}_elbow": (f"{_c}ForeArm", f"{_c}Hand"),
                     f"{_s}_wrist": (f"{_c}Hand", f"{_c}HandIndex1_end")})
    SMPL_CHILD.update({f"{_s}_hip": f"{_s}_knee", f"{_s}_knee": f"{_s}_ankle",
                       f"{_s}_ankle": f"{_s}_foot", f"{_s}_collar": f"{_s}_shoulder",
                       f"{_s}_shoulder": f"{_s}_elbow", f"{_s}_elbow": f"{_s}_wrist",
                       f"{_s}_wrist": f"{_s}_hand"})

# SMPL joint ↔ CMU joint position, for validation (anatomically corresponding points).
CMU_POSITION = {"pelvis": ("Hips",), "neck": ("Neck1",), "head": ("Head",)}
for _s, _c in (("left", "Left"), ("right", "Right")):
    CMU_POSITION.update({f"{_s}_hip": (f"{_c}UpLeg",), f"{_s}_knee": (f"{_c}Leg",),
                         f"{_s}_ankle": (f"{_c}Foot",), f"{_s}_foot": (f"{_c}ToeBase",),
                         f"{_s}_shoulder": (f"{_c}Arm",), f"{_s}_elbow": (f"{_c}ForeArm",),
                         f"{_s}_wrist": (f"{_c}Hand",)})
MAJOR_JOINTS = tuple(f"{s}_{n}" for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
                     for s in ("left", "right"))
# Bones whose lengths fit the shape (SMPL joint pair ↔ CMU joint pair).
LENGTH_BONES = [((f"{s}_{a}", f"{s}_{b}"), (CMU_POSITION[f"{s}_{a}"][0], CMU_POSITION[f"{s}_{b}"][0]))
                for s in ("left", "right")
                for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]
LENGTH_BONES += [(("left_hip", "right_hip"), ("LeftUpLeg", "RightUpLeg")),
                 (("left_shoulder", "right_shoulder"), ("LeftArm", "RightArm")),
                 (("pelvis", "neck"), ("LeftUpLeg", "Neck1"))]


def cmu_positions_m(P):
    """CMU positions (…,3) in file units, Y up → metres, Z up."""
    return (P * CMU_UNIT_M) @ Y_UP_TO_Z_UP.T


def _pos(bvh_names, P, names):
    return np.mean([P[..., bvh_names.index(n), :] for n in names], axis=0)


def fit_betas(body, tpose_pos, names, prior=0.05):
    """Shape coefficients whose rest bone lengths match the subject's T-pose (least squares)."""
    if not np.any(body.shapedirs):
        return np.zeros(body.num_betas)
    pairs = [(J[a], J[b], names.index(c), names.index(d)) for (a, b), (c, d) in LENGTH_BONES]
    target = np.array([np.linalg.norm(tpose_pos[c] - tpose_pos[d]) for _, _, c, d in pairs])
    jdirs = np.einsum("jv,vck->jck", body.J_regressor, body.shapedirs)
    j0 = body.J_regressor @ body.v_template

    def res(b):
        jt = j0 + jdirs @ b
        L = np.array([np.linalg.norm(jt[a] - jt[bb]) for a, bb, _, _ in pairs])
        return np.concatenate([L - target, prior * b])

    return least_squares(res, np.zeros(body.num_betas)).x


def retarget_bvh(bvh, body, betas=None, stride=4, fit_shape=True):
    """Retarget a CMU ``bvh/``-layout clip → dict(poses (T,72), trans (T,3), betas, fps,
    joints (T,24,3) SMPL joints, cmu_joints (T,24,3) the corresponding CMU points scaled by
    ``scale`` (NaN where no correspondence), scale). Frame 0 (T-pose) is dropped."""
    names = bvh.names
    G, P = bvh.forward(identity_joints=FINGER_JOINTS)
    P = cmu_positions_m(P)
    G = Y_UP_TO_Z_UP @ G
    if betas is None:
        betas = fit_betas(body, P[0], names) if fit_shape else np.zeros(body.num_betas)
    rest = body.rest_joints(betas)
    # Rest offsets A_j: SMPL rest bone → CMU T-pose bone (both in the canonical frame; the
    # CMU T-pose's bone directions are brought back to canonical with C^T).
    A = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
    for j_name, (a, b) in CMU_BONE.items():
        d_cmu = Y_UP_TO_Z_UP.T @ (P[0, names.index(b)] - P[0, names.index(a)])
        child = SMPL_CHILD.get(j_name)
        d_smpl = rest[J[child]] - rest[J[j_name]] if child else np.array([0.0, 1.0, 0.0])  # head: up
        A[J[j_name]] = minimal_rotation(d_smpl, d_cmu)
    for s in ("left", "right"):
        A[J[f"{s}_hand"]] = A[J[f"{s}_wrist"]]
        A[J[f"{s}_foot"]] = A[J[f"{s}_ankle"]]
    frames = np.arange(1, bvh.num_frames, stride)
    Gs = np.empty((len(frames), NUM_JOINTS, 3, 3))
    for j, name in enumerate(JOINT_NAMES):
        c = names.index(CMU_MAP[name])
        Gs[:, j] = G[frames, c] @ G[0, c].T @ Y_UP_TO_Z_UP @ A[j]
    local = Gs.copy()
    local[:, 1:] = np.swapaxes(Gs[:, PARENTS[1:]], -1, -2) @ Gs[:, 1:]
    # Root translation: SMPL hip midpoint follows the scaled CMU hip midpoint.
    leg = lambda p, h, k, a: np.linalg.norm(p[k] - p[h]) + np.linalg.norm(p[a] - p[k])  # noqa: E731
    cmu_leg = 0.5 * sum(leg(P[0], names.index(f"{c}UpLeg"), names.index(f"{c}Leg"), names.index(f"{c}Foot"))
                        for c in ("Left", "Right"))
    smpl_leg = 0.5 * sum(leg(rest, J[f"{s}_hip"], J[f"{s}_knee"], J[f"{s}_ankle"]) for s in ("left", "right"))
    scale = smpl_leg / cmu_leg
    hip_cmu = scale * _pos(names, P[frames], ("LeftUpLeg", "RightUpLeg"))
    hip_rest = 0.5 * (rest[J["left_hip"]] + rest[J["right_hip"]]) - rest[0]
    trans = hip_cmu - rest[0] - np.einsum("tij,j->ti", Gs[:, 0], hip_rest)
    joints = forward_kinematics(local, rest, trans)
    cmu_joints = np.full_like(joints, np.nan)
    for name, src in CMU_POSITION.items():
        cmu_joints[:, J[name]] = scale * _pos(names, P[frames], src)
    # Bone direction error (deg) per SMPL bone j → child, against the CMU bone it follows.
    bone_err = np.full((len(frames), NUM_JOINTS), np.nan)
    for j_name, (a, b) in CMU_BONE.items():
        child = SMPL_CHILD.get(j_name)
        if not child:
            continue
        u = joints[:, J[child]] - joints[:, J[j_name]]
        v = P[frames, names.index(b)] - P[frames, names.index(a)]
        cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.maximum(np.linalg.norm(v, axis=-1), 1e-9)
        bone_err[:, J[j_name]] = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return dict(poses=matrix_to_axis_angle(local).reshape(-1, 72), trans=trans, betas=np.asarray(betas),
                fps=bvh.fps / stride, joints=joints, cmu_joints=cmu_joints, scale=scale,
                bone_angle_deg=bone_err)


def resample_rotations(poses, trans, fps_in, fps_out):
    """Slerp poses (T,72) and lerp trans (T,3) from fps_in to fps_out."""
    T = len(poses)
    t_in = np.arange(T) / fps_in
    t_out = np.arange(0, t_in[-1] + 1e-9, 1.0 / fps_out)
    out = np.empty((len(t_out), NUM_JOINTS, 3))
    rv = poses.reshape(T, NUM_JOINTS, 3)
    for j in range(NUM_JOINTS):
        out[:, j] = Slerp(t_in, Rotation.from_rotvec(rv[:, j]))(t_out).as_rotvec()
    tr = np.stack([np.interp(t_out, t_in, trans[:, k]) for k in range(3)], axis=1)
    return out.reshape(len(t_out), 72), tr


def clip_table(root):
    """Rows of clips.csv (dicts) for the ``bvh/`` layout only (the Daz layout is another skeleton)."""
    with open(Path(root) / "clips.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["path"].startswith("bvh/")]


def default_body():
    """The open body when baked, else the capsule stand-in (with a warning)."""
    from engine.body.model import OPEN_BODY_PATH, load_body_model
    if OPEN_BODY_PATH.exists():
        return load_body_model()
    print("warning: engine/data/open_body.npz not found; using the capsule stand-in body",
          file=sys.stderr)
    from .standin import capsule_body
    return capsule_body()


def build_cache(cmu_root, out_dir, body=None, clips=None, progress=True):
    """Write one npz per clip (poses, trans, betas, fps=30, joints, scale, subject, category)."""
    body = body or default_body()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = clip_table(cmu_root)
    if clips:
        rows = [r for r in rows if r["clip"] in set(clips)]
    t0 = time.time()
    for i, r in enumerate(rows):
        dst = out_dir / f"{r['clip']}.npz"
        if dst.exists():
            continue
        res = retarget_bvh(read_bvh(Path(cmu_root) / r["path"]), body)
        np.savez_compressed(dst, poses=res["poses"].astype(np.float32), trans=res["trans"].astype(np.float32),
                            betas=res["betas"].astype(np.float32), fps=np.float64(res["fps"]),
                            joints=res["joints"].astype(np.float32), scale=np.float64(res["scale"]),
                            subject=np.array(r["subject"]), category=np.array(r["category"]),
                            clip=np.array(r["clip"]), body_model=np.array(body.name))
        if progress:
            print(f"[{i + 1}/{len(rows)}] {r['clip']} {len(res['poses'])} frames "
                  f"({time.time() - t0:.0f}s)", file=sys.stderr)
    return out_dir


def retarget_report(cmu_root, clips, body=None):
    """Per-joint mean distance (m) between retargeted SMPL joints and the scaled CMU joints."""
    body = body or default_body()
    rows = {r["clip"]: r for r in clip_table(cmu_root)}
    table = {}
    for c in clips:
        res = retarget_bvh(read_bvh(Path(cmu_root) / rows[c]["path"]), body)
        d = np.linalg.norm(res["joints"] - res["cmu_joints"], axis=-1)
        # limb-relative: each major joint relative to its limb root (shoulder / hip)
        rel = {}
        for n in MAJOR_JOINTS:
            root = J[n.split("_")[0] + ("_shoulder" if n.split("_")[1] in ("elbow", "wrist", "shoulder") else "_hip")]
            if n.endswith(("shoulder", "hip")):
                root = J["neck"] if n.endswith("shoulder") else J["pelvis"]
            a = res["joints"][:, J[n]] - res["joints"][:, root]
            b = res["cmu_joints"][:, J[n]] - res["cmu_joints"][:, root]
            rel[n] = float(np.mean(np.linalg.norm(a - b, axis=-1)))
        with np.errstate(all="ignore"):
            pj, ang = np.nanmean(d, axis=0), np.nanmax(res["bone_angle_deg"])
        table[c] = dict(per_joint=pj, bone_angle_max=ang, limb_rel=rel, scale=res["scale"], frames=len(d),
                        category=rows[c]["category"])
    return table


REPORT_CLIPS = ["124_01", "124_02", "124_03", "06_14", "06_15", "01_01", "02_05", "05_02",
                "13_19", "16_15", "16_35", "49_02", "55_01", "64_01", "105_02", "118_10",
                "127_07", "131_05", "135_02", "17_10"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmu", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "cmu"))
    ap.add_argument("--cache", help="build the retargeted cache into this folder (e.g. cache/cmu_smpl)")
    ap.add_argument("--report", action="store_true", help="print the retargeting report (markdown)")
    args = ap.parse_args(argv)
    if args.cache:
        build_cache(args.cmu, args.cache)
    if args.report:
        print(format_report(retarget_report(args.cmu, [c for c in REPORT_CLIPS if c in
                                                        {r['clip'] for r in clip_table(args.cmu)}])))


def format_report(table):
    cols = [n for n in JOINT_NAMES if n in CMU_POSITION]
    lines = ["| clip | category | frames (30 fps) | scale | " + " | ".join(cols)
             + " | major mean | max bone angle (°) |", "|---|---|---|---|" + "---|" * len(cols) + "---|---|"]
    allv = []
    for c, r in table.items():
        v = r["per_joint"]
        allv.append(v)
        major = np.mean([v[J[n]] for n in MAJOR_JOINTS])
        lines.append(f"| {c} | {r['category']} | {r['frames']} | {r['scale']:.3f} | "
                     + " | ".join(f"{1000 * v[J[n]]:.0f}" for n in cols) + f" | {1000 * major:.1f} | {r['bone_angle_max']:.2g} |")
    with np.errstate(all="ignore"):
        m = np.nanmean(allv, axis=0)
    lines.append("| **mean** | | | | " + " | ".join(f"**{1000 * m[J[n]]:.0f}**" for n in cols)
                 + f" | **{1000 * np.mean([m[J[n]] for n in MAJOR_JOINTS]):.1f}** | |")
    lines += ["", "Limb-relative error (mm): each joint relative to its limb root (elbow, wrist → "
              "shoulder; knee, ankle → hip; shoulder → neck; hip → pelvis), i.e. the error left after "
              "the trunk's proportions are factored out:", "",
              "| clip | " + " | ".join(MAJOR_JOINTS) + " |", "|---|" + "---|" * len(MAJOR_JOINTS)]
    for c, r in table.items():
        lines.append(f"| {c} | " + " | ".join(f"{1000 * r['limb_rel'][n]:.0f}" for n in MAJOR_JOINTS) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{1000 * np.mean([r['limb_rel'][n] for r in table.values()]):.0f}**"
                                             for n in MAJOR_JOINTS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
