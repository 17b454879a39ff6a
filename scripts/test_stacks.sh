#!/usr/bin/env bash
# The test suites on the other supported stacks, each in its own cached venv (.venv-<name>/).
#   scripts/test_stacks.sh                 set up (first run: downloads) and test every stack
#   scripts/test_stacks.sh bpy-4.2 mp1     only these; --setup-only: create the venvs, run nothing
# Stacks:
#   bpy-4.2, bpy-4.5  the add-on's tests on bpy 4.2.23 / 4.5.15 with the pinned engine stack
#                     (bpy 5.0.1 is the main .venv's: scripts/setup.sh --dev)
#   mp1               the engine's suite on the dependency set of the Blender 5.1+ zips as far
#                     as Python 3.11 allows (numpy 2, mediapipe 1.2.x with the pose bundle
#                     build_extension.py makes, current onnxruntime/opencv/scipy; installed --no-deps
#                     exactly as the zips ship them), then the demo clip's detections compared
#                     with the main .venv's mediapipe 0.10.21
# Needs the main .venv (scripts/setup.sh --dev): build_extension.py runs there to make the pose bundle.
# Each venv is re-created only when its package list changes (a stamp file inside it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
setup_only=0; stacks=()
for a in "$@"; do
  case "$a" in
    --setup-only) setup_only=1 ;;
    bpy-4.2|bpy-4.5|mp1) stacks+=("$a") ;;
    *) echo "usage: scripts/test_stacks.sh [--setup-only] [bpy-4.2|bpy-4.5|mp1]..." >&2; exit 2 ;;
  esac
done
[ ${#stacks[@]} -gt 0 ] || stacks=(bpy-4.2 bpy-4.5 mp1)
[ -x .venv/bin/python ] || { echo "error: .venv is missing: run scripts/setup.sh --dev first" >&2; exit 2; }
export MOCAP_STACK=1  # tests/test_stacks.py (which calls this script) skips inside a stack's run

# The add-on's tests (everything that imports bpy), and the install test of the 4.2-5.0 zip.
ADDON_TESTS=(tests/test_addon.py tests/test_addon_pitch.py tests/test_retarget_rigs.py
             tests/test_keyreduce.py tests/test_batch_safety.py tests/test_batch_workers.py)
# Engine tests that fail on the mp1 stack today, each with its cause (docs/install.md lists them too):
MP1_KNOWN=()   # none today; an entry is "tests/file.py::test_name (cause)"
NUMPY2=numpy==2.3.5
PYTEST=pytest==8.3.3
BUNDLE=.venv-mp1/pose_landmarker_full.task

# make_venv NAME "pip args ..." ["--no-deps args ..."]: (re)create .venv-NAME when its lists change
make_venv() {
  local name=$1 deps=$2 nodeps=${3:-} dir=.venv-$1 t0=$SECONDS
  local files=/dev/null; [[ $deps == *requirements.txt* ]] && files=requirements.txt
  local stamp="$dir/.installed-$(printf '%s\n%s\n' "$deps" "$nodeps" | cat - "$files" | sha1sum | cut -c1-12)"
  [ -f "$stamp" ] && { echo "stacks: $dir is up to date"; return; }
  rm -rf "$dir"
  echo "stacks: creating $dir"
  "$PY" -m venv "$dir"
  # shellcheck disable=SC2086
  "$dir/bin/python" -m pip install -q --disable-pip-version-check $deps
  # shellcheck disable=SC2086
  [ -z "$nodeps" ] || "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps $nodeps
  touch "$stamp"
  echo "stacks: $dir ready in $((SECONDS - t0)) s"
}

setup() {
  case "$1" in
    bpy-4.2) make_venv bpy-4.2 "-r requirements.txt bpy==4.2.23 $PYTEST" "mediapipe==0.10.21" ;;
    bpy-4.5) make_venv bpy-4.5 "-r requirements.txt bpy==4.5.15 $PYTEST" "mediapipe==0.10.21" ;;
    mp1)
      make_venv mp1 "$NUMPY2 $PYTEST" "$(.venv/bin/python build_extension.py --requirements 5.1+ | tr '\n' ' ')"
      [ -f "$BUNDLE" ] || .venv/bin/python build_extension.py --pose-bundle "$BUNDLE" ;;
  esac
}

# bpy 4.2.23 as a module segfaults when the interpreter exits after a class with a Python
# callback (an EnumProperty items function, a PointerProperty poll) was registered, even once
# unregistered; 4.5.15 hangs there while one is still registered. Both only at exit, after the
# results: the pytest run leaves through os._exit with its own status, and the subprocess test of
# imports (test_addon_never_imports_torch) is replaced by the same check ending the same way.
EXIT_PLUGIN_DIR=$(mktemp -d)
trap 'rm -rf "$EXIT_PLUGIN_DIR"' EXIT
cat > "$EXIT_PLUGIN_DIR/stack_exit.py" <<'EOF'
import os
import sys

_status = []


def pytest_sessionfinish(session, exitstatus):
    _status.append(int(exitstatus))


def pytest_unconfigure(config):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status[-1] if _status else 3)
EOF
NO_TORCH_CHECK="import os, sys; sys.path.insert(0, '.'); import bpy, addon; addon.register(); addon.unregister()
import addon.scene.build_scene, addon.batch, addon.jobs, engine.pipeline
ok = 'torch' not in sys.modules; print('add-on imports without torch:', ok); sys.stdout.flush(); os._exit(0 if ok else 1)"

run() {
  local name=$1 t0=$SECONDS rc=0
  case "$name" in
    bpy-4.*) PYTHONPATH=$EXIT_PLUGIN_DIR .venv-"$name"/bin/python -m pytest -q -p stack_exit "${ADDON_TESTS[@]}" \
               --deselect tests/test_addon.py::test_addon_never_imports_torch || rc=$?
             .venv-"$name"/bin/python -c "$NO_TORCH_CHECK" || rc=1 ;;
    mp1) local deselect=()
         if [ ${#MP1_KNOWN[@]} -gt 0 ]; then
           echo "stacks: mp1 known failures, deselected (not yet working on this stack):"
           printf '  %s\n' "${MP1_KNOWN[@]}"
           for t in "${MP1_KNOWN[@]}"; do deselect+=("--deselect=${t%% *}"); done
         fi
         # shellcheck disable=SC2046
         MOCAP_POSE_BUNDLE=$BUNDLE .venv-mp1/bin/python -m pytest -q $(printf -- '--ignore=%s ' "${ADDON_TESTS[@]}") \
           "${deselect[@]}" || rc=$?
         [ $rc = 0 ] && { compare_demo || rc=$?; } ;;
  esac
  echo "stacks: $name tests took $((SECONDS - t0)) s (exit $rc)"
  return $rc
}

# Detections on the demo clip's first 120 frames: mediapipe 0.10.21 (.venv) vs 1.x (.venv-mp1),
# every person matched frame by frame (nearest keypoints); prints the landmark differences.
compare_demo() {
  local tmp; tmp=$(mktemp -d)
  cat > "$tmp/detect.py" <<'EOF'
import sys
import numpy as np
import mediapipe as mp
from engine.observe import MediaPipePoseLandmarker, detect_people
from engine.video.decode import iter_frames, open_video
video, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cap, info = open_video(video)
cap.release()
d = detect_people(iter_frames(video, (0, n)), (info.width, info.height), info.fps,
                  detector=MediaPipePoseLandmarker(num_poses=4), camera_motion=False)
np.savez(out, frame_of=d.frame_of, keypoints=d.keypoints, world=d.world, frames=d.num_frames,
         version=mp.__version__)
EOF
  cat > "$tmp/compare.py" <<'EOF'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
px, mm, vis, only_a, only_b, frames_a, frames_b = [], [], [], 0, 0, 0, 0
for t in range(int(a["frames"])):
    ia, ib = list(np.flatnonzero(a["frame_of"] == t)), list(np.flatnonzero(b["frame_of"] == t))
    frames_a, frames_b = frames_a + bool(ia), frames_b + bool(ib)
    for i in ia:
        d = [np.nanmedian(np.linalg.norm(a["keypoints"][i, :, :2] - b["keypoints"][j, :, :2], axis=1)) for j in ib]
        if not d or min(d) > 50:  # px: not the same person
            only_a += 1
            continue
        j = ib.pop(int(np.argmin(d)))
        px.append(np.linalg.norm(a["keypoints"][i, :, :2] - b["keypoints"][j, :, :2], axis=1))
        mm.append(1e3 * np.linalg.norm(a["world"][i] - b["world"][j], axis=1))
        vis.append(np.abs(a["keypoints"][i, :, 2] - b["keypoints"][j, :, 2]))
    only_b += len(ib)
px, mm, vis = (np.concatenate(x) if x else np.zeros(1) for x in (px, mm, vis))
print(f"demo, {int(a['frames'])} frames: mediapipe {a['version']} found people in {frames_a} frames "
      f"({len(a['frame_of'])} detections), {b['version']} in {frames_b} ({len(b['frame_of'])}); "
      f"{len(px) // 33} matched, {only_a} only in {a['version']}, {only_b} only in {b['version']}")
print(f"  keypoints px: median {np.median(px):.2f}, p90 {np.percentile(px, 90):.2f}, max {px.max():.1f}; "
      f"world landmarks mm: median {np.median(mm):.1f}, p90 {np.percentile(mm, 90):.1f}; "
      f"visibility: median |diff| {np.median(vis):.3f}")
EOF
  PYTHONPATH=. .venv/bin/python "$tmp/detect.py" assets/demo/sports2d_demo.mp4 "$tmp/a.npz" 120 2>/dev/null
  PYTHONPATH=. MOCAP_POSE_BUNDLE=$BUNDLE .venv-mp1/bin/python "$tmp/detect.py" \
    assets/demo/sports2d_demo.mp4 "$tmp/b.npz" 120 2>/dev/null
  .venv/bin/python "$tmp/compare.py" "$tmp/a.npz" "$tmp/b.npz"
  rm -rf "$tmp"
}

for s in "${stacks[@]}"; do setup "$s"; done
[ $setup_only = 1 ] && exit 0
fail=0
for s in "${stacks[@]}"; do run "$s" || fail=1; done
exit $fail
