"""engine.estimate.onnx_runtime: onnxruntime execution providers by device preference (fake provider lists:
no GPU is needed to check the CUDA path), and training.bench.speed's helpers."""
import numpy as np
import pytest

from engine.estimate import onnx_runtime as runtime
from engine.errors import EngineError

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
GPU_BUILD = ["TensorrtExecutionProvider", CUDA, CPU]
CPU_BUILD = ["AzureExecutionProvider", CPU]


@pytest.mark.parametrize("device, have, want", [
    ("auto", GPU_BUILD, [CUDA, CPU]),
    ("auto", CPU_BUILD, [CPU]),
    ("gpu", GPU_BUILD, [CUDA, CPU]),
    ("GPU", GPU_BUILD, [CUDA, CPU]),
    ("cuda", [CUDA, CPU], [CUDA, CPU]),
    ("cpu", GPU_BUILD, [CPU]),
    ("CPU", CPU_BUILD, [CPU]),
    (None, GPU_BUILD, [CUDA, CPU]),
])
def test_select_providers(device, have, want):
    assert runtime.select_providers(device, have) == want


def test_gpu_without_cuda_is_a_clear_error():
    with pytest.raises(EngineError, match="onnxruntime-gpu"):
        runtime.select_providers("gpu", CPU_BUILD)
    with pytest.raises(EngineError, match="unknown device"):
        runtime.select_providers("tpu", GPU_BUILD)


def test_cuda_options_travel_with_the_provider():
    got = runtime.select_providers("auto", GPU_BUILD, cuda_options={"device_id": 1})
    assert got == [(CUDA, {"device_id": 1}), CPU]


class FakeSession:
    """Stands in for onnxruntime.InferenceSession; ``loads`` = the providers that came up."""

    def __init__(self, loads):
        self.loads = loads
        self.asked = None

    def __call__(self, model, options, providers):
        self.asked = providers
        self.model = model
        return self

    def get_providers(self):
        return [p for p in self.loads if p in [q[0] if isinstance(q, tuple) else q for q in self.asked]]


def test_create_session_asks_for_cuda_and_checks_it_came_up(tmp_path):
    ok = FakeSession([CUDA, CPU])
    s = runtime.create_session(tmp_path / "m.onnx", "auto", available=GPU_BUILD, factory=ok)
    assert ok.asked == [CUDA, CPU] and runtime.describe(s) == "CUDA"
    # CUDA listed but its libraries fail to load: onnxruntime falls back to the CPU by itself
    broken = FakeSession([CPU])
    s = runtime.create_session(tmp_path / "m.onnx", "auto", available=GPU_BUILD, factory=broken)
    assert broken.asked == [CUDA, CPU] and runtime.describe(s) == "CPU"
    with pytest.raises(EngineError, match="could not start CUDA"):
        runtime.create_session(tmp_path / "m.onnx", "gpu", available=GPU_BUILD, factory=FakeSession([CPU]))
    cpu = FakeSession([CUDA, CPU])
    runtime.create_session(tmp_path / "m.onnx", "cpu", available=GPU_BUILD, factory=cpu)
    assert cpu.asked == [CPU]


def test_device_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    f = FakeSession([CUDA, CPU])
    runtime.create_session(tmp_path / "m.onnx", None, available=GPU_BUILD, factory=f)
    assert f.asked == [CPU]
    f = FakeSession([CUDA, CPU])
    runtime.create_session(tmp_path / "m.onnx", "gpu", available=GPU_BUILD, factory=f)  # explicit wins
    assert f.asked == [CUDA, CPU]


def test_real_session_on_this_machine(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "relu.onnx")
    s = runtime.create_session(tmp_path / "relu.onnx", "cpu")
    assert s.get_providers()[0] == CPU
    y = s.run(None, {"x": np.array([[-1.0, 0.5, 2.0]], np.float32)})[0]
    assert np.allclose(y, [[0.0, 0.5, 2.0]])
    if CUDA not in runtime.available_providers():
        with pytest.raises(EngineError):
            runtime.create_session(tmp_path / "relu.onnx", "gpu")


# ------------------------------------------------------------------ training.bench.speed helpers
def test_growth_per_frame_and_rss():
    from training.bench import speed as bench
    frames = np.arange(0, 1000, 10)
    flat = [(f, 400.0) for f in frames]
    assert abs(bench.growth_per_frame(flat)) < 1e-6
    grow = [(f, 400.0 + f * 0.01) for f in frames]  # 0.01 MiB = 10.24 KiB per frame
    assert bench.growth_per_frame(grow) == pytest.approx(10.24)
    assert bench.peak_rss_mb() > 10
    assert bench.rss_mb() is None or bench.rss_mb() > 10


def test_print_clip_table(capsys):
    from training.bench import speed as bench
    res = {"video": "x.mp4", "source_size": (1920, 1080), "size": (1280, 720), "estimator": "baseline",
           "frames": 100, "valid": 90, "recovered": 3, "prefetch": 4, "detect_first": 0,
           "cores_load_before": (2, (1.0, 1.0, 1.0)), "cores_load_after": (2, (1.5, 1.0, 1.0)),
           "decode_s": 1.0, "end_to_end_s": 6.0, "rss_samples": [(1, 300.0), (100, 310.0)],
           "rss_end_mb": 305.0, "rss_growth_kib_per_frame": 100.0, "peak_rss_mb": 400.0,
           "timings": {"decode": 1.2, "setup": 0.5, "detection": 4.0, "masks_appearance": 0.1,
                       "flow_homographies": 0.3, "tracking": 0.1, "gap_recovery": 0.5, "fit": 0.1,
                       "smoothing": 0.2, "write": 0.05}}
    bench.print_clip(res)
    out = capsys.readouterr().out
    assert "end-to-end / (decode + detection) = 1.20" in out
    assert "refinement" in out and "n/a" in out
    assert "peak RSS: 400 MiB" in out


def test_print_clip_counts_the_refinement_stage(capsys):
    from training.bench import speed as bench
    res = {"video": "x.mp4", "source_size": (1280, 720), "size": (1280, 720), "estimator": "temporal",
           "frames": 100, "valid": 100, "recovered": 0, "prefetch": 4, "detect_first": 0, "refinement": "on",
           "cores_load_before": (2, (1.0, 1.0, 1.0)), "cores_load_after": (2, (1.0, 1.0, 1.0)),
           "decode_s": 1.0, "end_to_end_s": 7.0, "rss_samples": [], "rss_end_mb": 1.0,
           "rss_growth_kib_per_frame": 0.0, "peak_rss_mb": 1.0,
           "timings": {"setup": 0.5, "detection": 4.0, "temporal_model": 0.1, "refinement": 1.0,
                       "refinement_network": 0.4, "fit": 0.1, "smoothing": 0.2, "write": 0.05}}
    bench.print_clip(res)
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("refinement"))
    assert "1.00" in line and "its network 0.40 s" in line
    other = next(ln for ln in out.splitlines() if ln.startswith("other"))
    assert float(other.split()[1]) == pytest.approx(7.0 - 5.95, abs=0.01)   # the refinement is in the sum


def test_print_clip_follow_counts_the_pass_wall_clock_and_a_separate_landmarking_floor(capsys):
    from training.bench import speed as bench
    res = {"video": "x.mp4", "source_size": (1280, 720), "size": (1280, 720), "estimator": "baseline",
           "frames": 100, "valid": 100, "recovered": 0, "prefetch": 4, "detect_first": 0, "follow": True,
           "cores_load_before": (2, (1.0, 1.0, 1.0)), "cores_load_after": (2, (1.0, 1.0, 1.0)),
           "decode_s": 1.0, "end_to_end_s": 8.0, "rss_samples": [], "rss_end_mb": 1.0,
           "rss_growth_kib_per_frame": 0.0, "peak_rss_mb": 1.0, "crop_landmarking_alone_s": 2.2,
           "crop_landmarking_image_mode_s": 3.0,
           # two follow threads: their stages sum to more than the pass's wall clock
           "timings": {"survey": 2.0, "follow_wall": 4.0, "follow_landmarks": 5.0, "masks_appearance": 0.2,
                       "flow_homographies": 1.5, "gap_recovery": 1.0, "fit": 0.1, "write": 0.05}}
    bench.print_clip(res)
    out = capsys.readouterr().out
    other = next(ln for ln in out.splitlines() if ln.startswith("other"))
    assert float(other.split()[1]) == pytest.approx(8.0 - 7.15, abs=0.01)  # wall clock in, its parts out
    assert any(ln.startswith("  * crop landmarking") and "5.00" in ln for ln in out.splitlines())
    assert "(decode + single-person landmarking) = 2.50" in out
    assert "30.0 ms/frame; end-to-end / (decode + that) = 2.00" in out   # the IMAGE-mode floor


def test_networks_alone_include_the_shipped_refinement():
    from training.bench import speed as bench
    from engine.estimate import temporal
    res = bench.bench_networks(temporal.SHIPPED_DIR, "cpu", batches=(1,), d2a_batches=(2,))
    assert [r["frames"] for r in res["d2a"]] == [2] and res["d2a"][0]["frames_per_s"] > 0


def test_replay_detector_follows_the_pingpong_clip(monkeypatch):
    from training.bench import speed as bench
    from engine import observe

    class Counting:
        def __init__(self):
            self.calls = 0

        def detect_all(self, rgb, ts):
            self.calls += 1
            return [int(rgb[0, 0, 0])]  # "detections" = the frame number written in the frame

        def close(self):
            pass
    inner = Counting()
    monkeypatch.setattr(observe, "default_detector", lambda n=4: inner)
    r = bench.ReplayDetector(3)
    src = [0, 1, 2, 2, 1, 0, 0, 1, 2, 2]  # the source frame each clip frame shows (make_clip)
    got = [r.detect_all(np.full((2, 2, 3), s, np.uint8), 0.0) for s in src]
    assert got == [[s] for s in src] and inner.calls == 3


@pytest.mark.slow
@pytest.mark.parametrize("mode, expected", [
    ([], ("--follow (default)", "survey (--follow)", "crop landmarking (--follow)",
          "end-to-end / (decode + single-person landmarking)")),
    (["--no-follow"], ("--no-follow (every frame detected)", "detection", "end-to-end / (decode + detection)"))])
def test_bench_runs_on_a_few_frames(capsys, mode, expected):
    from conftest import DEMO_VIDEO
    from training.bench import speed as bench
    assert bench.main([str(DEMO_VIDEO), "--frames", "20", "--max-side", "640", "--no-networks"] + mode) == 0
    out = capsys.readouterr().out
    for s in ("decode alone", "flow / homographies", "gap recovery", "END TO END", "peak RSS") + expected:
        assert s in out, s


def test_make_clip_loops_a_frame_range_forward(tmp_path):
    """--make-clip --clip-frames 2:5 --forward: source frames 2, 3, 4, 2, 3, 4, … (pingpong:
    2, 3, 4, 4, 3, 2, …); each written frame is identified by the gray level it carries."""
    import cv2
    from training.bench import speed as bench
    src = tmp_path / "src.avi"
    wr = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 16))
    for k in range(7):
        wr.write(np.full((16, 32, 3), 30 * k, np.uint8))
    wr.release()

    def levels(path):
        cap, out = cv2.VideoCapture(str(path)), []
        while True:
            ok, f = cap.read()
            if not ok:
                return out
            out.append(int(round(f.mean() / 30)))
    for pingpong, expect in ((False, [2, 3, 4, 2, 3, 4, 2, 3]), (True, [2, 3, 4, 4, 3, 2, 2, 3])):
        out = tmp_path / f"loop_{pingpong}.avi"
        n = bench.make_clip(out, seconds=0.8, size=(32, 16), source=src, fourcc="MJPG", log=None,
                            pingpong=pingpong, frames=(2, 5))
        assert n == 8 and levels(out) == expect
