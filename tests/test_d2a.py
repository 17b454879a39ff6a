"""Seed 0 (D2A-HMR refinement): coarse mesh, shapes, body geometry, masking, training, ONNX export."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.body import kinematics as K, load_body_model  # noqa: E402
from training.d2a.coarse_mesh_file import COARSE_MESH_PATH, load_coarse_mesh  # noqa: E402
from training.d2a.coarse_mesh import subset  # noqa: E402
from training.d2a.model import (ABLATION_ROWS, NUM_JOINTS, SWITCHES, D2AHMR, D2ATraining, ablation,  # noqa: E402
                                 toy_batch)


pytestmark = pytest.mark.usefixtures("torch_one_thread")

TINY = dict(d_model=32, heads=2, enc_layers=1, dec_layers=1, ffn_mult=2, dropout=0.0)
TINY_IMP = dict(feat_dim=8, hidden=16, render_size=8, samples=8)


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def small(body):
    """48 coarse vertices instead of 431: the same code, a fraction of the decoder's cost."""
    return subset(load_coarse_mesh(), body, 48)


def test_coarse_mesh_file(body):
    cm = load_coarse_mesh()
    assert COARSE_MESH_PATH.stat().st_size < 400_000
    assert len(cm.indices) == 431 and len(np.unique(cm.indices)) == 431
    assert cm.num_vertices == len(body.v_template) and cm.up_index.max() < 431
    np.testing.assert_allclose(cm.up_weight.sum(1), 1.0, atol=1e-5)
    rng = np.random.default_rng(7)                 # a pose the weights were not fitted on
    poses = rng.normal(scale=0.3, size=(1, 72))
    V = body.vertices(poses, rng.normal(size=10))
    err = np.linalg.norm(cm.upsample(V[:, cm.indices]) - V, axis=-1)
    assert err.mean() < 0.006, err.mean()          # metres; ~2–3 mm typical


def test_coarse_body_matches_numpy_lbs(body, small):
    m = D2AHMR(body, small, **TINY)
    rng = np.random.default_rng(0)
    aa = rng.normal(scale=0.4, size=(2, 24, 3))
    betas = rng.normal(size=(2, 10))
    j, v = m.body(torch.tensor(K.axis_angle_to_matrix(aa), dtype=torch.float32), torch.tensor(betas, dtype=torch.float32))
    for b in range(2):
        jn = body.joints(aa[b].reshape(1, 72), betas[b])[0]
        vn = body.vertices(aa[b].reshape(1, 72), betas[b])[0][small.indices]
        np.testing.assert_allclose(j[b].numpy(), jn - jn[0], atol=2e-5)
        np.testing.assert_allclose(v[b].numpy(), vn - jn[0], atol=2e-5)


@pytest.mark.parametrize("flags", [{}, {"use_depth": False}, {"use_silhouette_decoder": False},
                                   {"use_depth_map": True}, {"use_silhouette_input": False}])
def test_shapes(body, small, flags):
    m = D2AHMR(body, small, **TINY, **flags).eval()
    b = toy_batch(m, 3)
    with torch.no_grad():
        out = m(b["features"], b["silhouette_in"], b["init_rot6d"], b["init_betas"], b["init_cam"], b.get("depth_map"))
    n = len(small.indices)
    assert out["joints"].shape == (3, 24, 3) and out["sigma"].shape == (3, 24)
    assert out["vertices"].shape == (3, n, 3) and out["rot6d"].shape == (3, 24, 6)
    assert out["betas"].shape == (3, 10) and out["cam"].shape == (3, 3) and out["global_code"].shape == (3, 2 * 32)
    assert ((out["sigma"] > 0) & (out["sigma"] < 1)).all()
    assert ("silhouette_logits" in out) == m.use_sil_dec
    if m.use_sil_dec:
        assert out["silhouette_logits"].shape == (3, 56, 56)
    # untrained residual heads: the output is the temporal estimate itself
    j0, v0 = m.initial_estimate(b["init_rot6d"], b["init_betas"])
    torch.testing.assert_close(out["joints"], j0)
    torch.testing.assert_close(out["vertices"], v0)
    torch.testing.assert_close(out["rot6d"], b["init_rot6d"])


def test_full_size_model_runs(body):
    m = D2AHMR(body).eval()                      # the real 431-vertex decoder, default width
    assert m.num_coarse == 431
    b = toy_batch(m, 1)
    with torch.no_grad():
        out = m(b["features"], b["silhouette_in"], b["init_rot6d"], b["init_betas"], b["init_cam"])
    assert out["vertices"].shape == (1, 431, 3) and torch.isfinite(out["joints"]).all()
    assert sum(p.numel() for p in m.parameters()) < 3_000_000        # ONNX of a few MB


def _randomise_heads(m, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    for h in (m.joint_head, m.rot_head, m.vert_head, m.betas_head, m.cam_head):
        h.weight.data = torch.randn(h.weight.shape, generator=g) * scale
    return m


def test_masking_only_in_training(body, small):
    m = _randomise_heads(D2AHMR(body, small, **TINY))
    b = toy_batch(m, 32)
    args = (b["features"], b["silhouette_in"], b["init_rot6d"], b["init_betas"], b["init_cam"])
    m.eval()
    with torch.no_grad():
        o1, o2 = m(*args), m(*args)
    assert not o1["query_mask"].any()
    torch.testing.assert_close(o1["joints"], o2["joints"])
    m.train()
    torch.manual_seed(1)
    with torch.no_grad():
        ot = m(*args)
    mask = ot["query_mask"]
    frac = mask.float().mean(1)
    assert mask.any() and (frac <= 0.45).all() and 0.05 < frac.mean() < 0.25   # r ~ U(0, 0.3) per sample
    # a masked joint's residual base is the rest template, an unmasked one's the temporal estimate
    j0, _ = m.initial_estimate(b["init_rot6d"], b["init_betas"])
    with torch.no_grad():
        m.joint_head.weight.zero_()
        m.joint_head.bias.zero_()
        torch.manual_seed(1)
        oz = m(*args)
    torch.testing.assert_close(oz["query_mask"], mask)
    torch.testing.assert_close(oz["joints"], torch.where(mask[:, :NUM_JOINTS, None], m.template_joints.expand_as(j0), j0))


def test_training_steps_reduce_loss(body, small):
    torch.manual_seed(0)
    m = D2AHMR(body, small, **TINY)
    tr = D2ATraining(m, imphmr_args=TINY_IMP)
    b = toy_batch(m, 2, seed=3)

    def evaluate():
        tr.eval()
        with torch.no_grad():
            loss, parts, _ = tr(b, generator=torch.Generator().manual_seed(0))
        tr.train()
        return loss.item(), parts

    before, parts = evaluate()
    assert np.isfinite(before) and all(np.isfinite(v) for v in parts.values())
    assert {"rle", "vertices", "joints3d", "joints2d", "silhouette", "imphmr"} <= set(parts)
    opt = torch.optim.Adam(tr.parameters(), lr=2e-3)
    for i in range(6):
        loss, _, _ = tr(b, generator=torch.Generator().manual_seed(i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = evaluate()
    assert after < before, (before, after)


@pytest.mark.parametrize("name", ["full", *SWITCHES, *(r for r, _ in ABLATION_ROWS)])
def test_ablation_switches(body, small, name):
    ab = ablation(name)
    m = D2AHMR(body, small, **TINY, **ab.get("model", {}))
    tr = D2ATraining(m, imphmr_args=TINY_IMP, **ab.get("train", {}))
    loss, parts, _ = tr(toy_batch(m, 2))
    loss.backward()
    assert torch.isfinite(loss)
    assert ("rle" in parts) == ab.get("train", {}).get("use_rle", True)
    assert ("imphmr" in parts) == ab.get("train", {}).get("use_imphmr", True)
    assert ("silhouette" in parts) == ab.get("model", {}).get("use_silhouette_decoder", True)
    if not m.use_depth:
        assert not any(n.startswith("depth") for n, _ in m.named_parameters())


def test_onnx_export_parity_and_no_training_parts(body, small, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from training.d2a.export import D2A_OUTPUTS, d2a_torch_vs_onnx, example_d2a_inputs, export_d2a
    m = D2AHMR(body, small, **TINY)
    tr = D2ATraining(m, imphmr_args=TINY_IMP)            # the training wrapper holds flow + ImpHMR
    _randomise_heads(m, seed=3)
    path = tmp_path / "d2a.onnx"
    export_d2a(tr.model, path, {"note": "test: untrained"})
    diffs = d2a_torch_vs_onnx(m, path, example_d2a_inputs(m, batch=5, seed=9))   # another batch size
    assert set(diffs) == set(D2A_OUTPUTS)
    assert diffs["joints"] < 1e-4 and max(diffs.values()) < 1e-4, diffs
    g = onnx.load(str(path)).graph
    assert [o.name for o in g.output] == list(D2A_OUTPUTS)
    names = " ".join(i.name for i in g.initializer)
    assert "imphmr" not in names and "flow" not in names and "sil_decoder" not in names
    n_onnx = sum(int(np.prod(i.dims)) for i in g.initializer)
    n_model = sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers())
    n_training_only = sum(p.numel() for p in tr.imphmr.parameters()) + sum(p.numel() for p in tr.flow.parameters())
    assert n_onnx <= n_model < n_model + n_training_only
    assert not any(len(i.dims) == 4 for i in g.initializer)    # no conv weights: silhouette decoder, ImpHMR


def test_imphmr_on_a_subset_of_the_batch(body, small):
    """imphmr_frames = k: the ImpHMR term is the one of the first k frames alone; the other
    terms still use the whole batch."""
    torch.manual_seed(0)
    m = D2AHMR(body, small, **TINY).eval()
    full = D2ATraining(m, imphmr_args=TINY_IMP).eval()
    part = D2ATraining(m, imphmr_args=TINY_IMP, imphmr_frames=2).eval()
    part.imphmr.load_state_dict(full.imphmr.state_dict())
    part.flow.load_state_dict(full.flow.state_dict())
    b4, b2 = toy_batch(m, 4, seed=5), None
    b2 = {k: v[:2] for k, v in b4.items()}
    with torch.no_grad():
        _, p_part, _ = part(b4, generator=torch.Generator().manual_seed(1))
        _, p_first, _ = full(b2, generator=torch.Generator().manual_seed(1))
        _, p_full, _ = full(b4, generator=torch.Generator().manual_seed(1))
    assert p_part["imphmr"] == pytest.approx(p_first["imphmr"], rel=1e-5)
    assert p_part["joints3d"] == pytest.approx(p_full["joints3d"], rel=1e-6)
    assert p_part["imphmr"] != pytest.approx(p_full["imphmr"], rel=1e-3)
