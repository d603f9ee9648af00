"""The tracker model: shapes, parameter budgets, LoRA merge, trainability, expert routing, embedding, loss."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from unitrack.errors import ConfigError
from unitrack.model import LoRATTracker, box_iou, build_model, giou, lorat_loss
from unitrack.model import experts as ex
from unitrack.model.loss import box_cell_mask

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
MODS = ("thermal", "depth", "event")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # On a shared, loaded CPU, OpenMP spin-waiting makes 2 threads far slower than 1.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny(**over) -> LoRATTracker:
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "lorat_tiny.yaml"), over)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model(cfg)


def batch(m: LoRATTracker, mods, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b = len(mods)
    t, s = m.template_size, m.search_size
    return (torch.rand(b, 3, t, t, generator=g), torch.rand(b, 3, t, t, generator=g),
            torch.rand(b, 3, s, s, generator=g), torch.rand(b, 3, s, s, generator=g),
            torch.tensor([[0.3, 0.25, 0.7, 0.8]]).repeat(b, 1), list(mods))


def randomise_lora(m: LoRATTracker, std: float = 0.05) -> None:
    """peft starts B at zero (a no-op adapter); give every expert a distinct non-zero update."""
    with torch.no_grad():
        for n, p in ex.lora_parameters(m.vit).items():
            if "lora_B" in n:
                p.normal_(0, std)
        if m.xbranch is not None:
            for pr in m.xbranch.prompters:
                pr.up_rgb.weight.normal_(0, std)


# ---------------------------------------------------------------- shapes and config
COMBOS = [(e, "fused", d) for e in ex.EXPERT_MODES for d in (0, 2, 4)]
COMBOS += [(e, "fused+unimodal", d) for e in ex.EXPERT_MODES for d in (1, 4)]


@pytest.mark.parametrize("experts,heads,depth", COMBOS)
def test_forward_shapes(experts, heads, depth):
    m = tiny(experts=experts, heads=heads, x_branch={"depth": depth})
    out = m(*batch(m, ["thermal", "event", "depth"]))
    n, c = m.feat_size**2, m.embed_dim
    assert m.feat_size == 8 and n == 64
    assert out["score"].shape == (3, n) and out["box"].shape == (3, n, 4)
    assert out["feat_rgb"].shape == (3, c) and out["feat_x"].shape == (3, c)
    keys = {"score_rgb", "box_rgb", "score_x", "box_x"}
    assert keys <= out.keys() if heads == "fused+unimodal" else not keys & out.keys()
    if heads == "fused+unimodal":
        assert out["score_x"].shape == (3, n) and out["box_rgb"].shape == (3, n, 4)
    assert (m.xbranch is None) == (depth == 0)
    if depth == 0:  # RGB only: the X inputs are ignored
        assert out["feat_x"] is out["feat_rgb"]
    m.eval()
    with torch.no_grad():
        box = m(*batch(m, ["depth"]))["box"]
    assert box.min() >= 0 and box.max() <= 1


@pytest.mark.parametrize("finetune", ["full", "frozen"])
def test_forward_other_finetune_modes(finetune):
    m = tiny(finetune=finetune)
    assert not ex.lora_layers(m)
    out = m(*batch(m, ["thermal", "depth"]))
    assert out["score"].shape == (2, 64)


def test_modality_index_tensor_equals_names():
    m = tiny(experts="per_modality").eval()
    randomise_lora(m)
    z, zx, x, xx, zb, _ = batch(m, ["event", "thermal", "depth"])
    with torch.no_grad():
        a = m(z, zx, x, xx, zb, ["event", "thermal", "depth"])["score"]
        b = m(z, zx, x, xx, zb, torch.tensor([2, 0, 1]))["score"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="modality"):
        m(z, zx, x, xx, zb, ["event", "rgb", "depth"])


def test_config_paths_and_errors(tmp_path):
    cfg = OmegaConf.load(CONF / "lorat_tiny.yaml")
    with pytest.warns(UserWarning, match="randomly initialised"):
        m = instantiate(cfg)
    assert isinstance(m, LoRATTracker)
    assert (m.template_size, m.search_size, m.template_factor, m.search_factor) == (32, 64, 2.0, 4.0)
    with pytest.raises(ConfigError, match="model.weights"):
        build_model(OmegaConf.merge(cfg, {"weights": str(tmp_path / "missing.safetensors")}))
    with pytest.raises(ConfigError, match="model.finetune"):
        build_model(OmegaConf.merge(cfg, {"finetune": "adapter"}))
    with pytest.raises(ConfigError, match="model.experts"):
        build_model(OmegaConf.merge(cfg, {"finetune": "full", "experts": "per_modality"}))
    with pytest.raises(ConfigError, match="model.heads"):
        build_model(OmegaConf.merge(cfg, {"heads": "fused+unimodal", "x_branch": {"depth": 0}}))
    with pytest.raises(ConfigError, match="model.x_branch.depth"):
        build_model(OmegaConf.merge(cfg, {"x_branch": {"depth": 5}}))
    with pytest.raises(ConfigError, match="model.search_size"):
        build_model(OmegaConf.merge(cfg, {"search_size": 60}))
    with pytest.raises(ConfigError, match="model.lr"):
        build_model(OmegaConf.merge(cfg, {"lr": 1.0}))


def test_local_weights_file_is_loaded(tmp_path):
    src = tiny(finetune="full", x_branch={"depth": 0})
    with torch.no_grad():
        for p in src.vit.parameters():
            p.add_(1.0)  # differ from the seeded random init the second build would produce
    path = tmp_path / "vit.pth"
    torch.save(src.vit.state_dict(), path)
    m = tiny(weights=str(path), pretrained=False)
    base = {n.replace(".base_layer", ""): p for n, p in m.vit.named_parameters() if "lora_" not in n}
    for n, p in src.vit.state_dict().items():
        torch.testing.assert_close(base[n], p, rtol=0, atol=0)


# ---------------------------------------------------------------- parameter budgets (meta device)
def meta_counts(variant: str, **over) -> dict[str, int]:
    cfg = OmegaConf.merge(OmegaConf.load(CONF / f"lorat_{variant}.yaml"), {"pretrained": False}, over)
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        m = build_model(cfg)
    assert all(p.is_meta for p in m.parameters())
    assert not any("lora" in n for n, _ in m.vit.patch_embed.named_modules())
    return m.param_counts()


def test_b224_budget_matches_lorat():
    c = meta_counts("b224", x_branch={"depth": 0})
    dim, r, blocks = 768, 64, 12
    lora = blocks * r * ((dim + 3 * dim) + (dim + dim) + (dim + 4 * dim) + (4 * dim + dim))
    mlp = lambda out: 2 * (dim * dim + dim) + dim * out + out  # noqa: E731
    assert c["lora"] == lora  # 9.44M: timm's fused qkv shares one LoRA A (LoRAT: separate q,k,v -> 11M)
    assert c["head"] == mlp(1) + mlp(4)  # 2.37M (LoRAT: "head 2M")
    assert c["trainable"] == lora + c["head"] + 3 * dim
    assert 97e6 < c["total"] < 99.5e6  # LoRAT: 99M
    full = meta_counts("b224", x_branch={"depth": 0}, finetune="full")
    assert full["lora"] == 0 and full["trainable"] >= full["total"] - 2 * dim  # all but cls token


@pytest.mark.parametrize("variant,trainable_m,total_m", [
    ("l224", (28, 31), (330, 337)), ("l378", (28, 31), (330, 337)), ("g378", (70, 75), (1200, 1216)),
])
def test_big_variant_budgets(variant, trainable_m, total_m):
    c = meta_counts(variant, x_branch={"depth": 0})
    assert trainable_m[0] * 1e6 < c["trainable"] < trainable_m[1] * 1e6
    assert total_m[0] * 1e6 < c["total"] < total_m[1] * 1e6


def test_experts_and_x_branch_add_parameters():
    base = meta_counts("b224", x_branch={"depth": 0})
    xb = meta_counts("b224")  # X branch of 6 blocks
    moe = meta_counts("b224", experts="shared+per_modality")
    assert 0.5e6 < xb["x_branch"] < 2e6 and xb["trainable"] == base["trainable"] + xb["x_branch"]
    assert moe["lora"] == 4 * base["lora"]


# ---------------------------------------------------------------- merge
@pytest.mark.parametrize("experts", ["shared", "shared+per_modality"])
def test_merge_matches_unmerged(experts):
    m = tiny(experts=experts, heads="fused+unimodal")
    randomise_lora(m)
    m.eval()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    for mod in MODS:
        merged = m.merge(mod).eval()
        assert not ex.lora_layers(merged) and not any("lora" in n for n, _ in merged.named_parameters())
        inp = batch(merged, [mod, mod])
        with torch.no_grad():
            a, b = m(*inp), merged(*inp)
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5)
    assert ex.lora_layers(m)  # the original keeps its adapters and weights
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k])
    if experts != "shared":
        with pytest.raises(ValueError, match="merged for 'thermal'"):
            merged = m.merge("thermal")
            merged(*batch(merged, ["depth"]))


# ---------------------------------------------------------------- trainability
def adamw_step(m: LoRATTracker, mods=("thermal", "depth")) -> None:
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    out = m(*batch(m, mods))
    loss, _ = lorat_loss(out["score"], out["box"], torch.tensor([[0.4, 0.4, 0.6, 0.7]] * len(mods)), m.feat_size)
    loss.backward()
    opt.step()


def test_lora_step_moves_only_trainable_parts():
    m = tiny()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    adamw_step(m)
    changed = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    frozen = [n for n in before if n.startswith("vit.") and "lora_" not in n]
    assert frozen and not changed & set(frozen)  # blocks, patch/pos embed, final norm untouched
    lora_b = [n for n in before if "lora_B" in n]
    assert lora_b and set(lora_b) <= changed
    assert "token_type" in changed
    assert any(n.startswith("head.") for n in changed) and any(n.startswith("xbranch.") for n in changed)
    assert "xbranch.patch_embed.proj.weight" in changed


@pytest.mark.parametrize("finetune", ["frozen", "full"])
def test_frozen_and_full_modes(finetune):
    m = tiny(finetune=finetune)
    w = m.vit.blocks[0].attn.qkv.weight.detach().clone()
    tt = m.token_type.detach().clone()
    adamw_step(m)
    assert torch.equal(w, m.vit.blocks[0].attn.qkv.weight) == (finetune == "frozen")
    assert not torch.equal(tt, m.token_type)


# ---------------------------------------------------------------- expert isolation
def grad_norm(m: LoRATTracker, adapter: str) -> float:
    ps = ex.lora_parameters(m.vit, adapter).values()
    assert ps
    return sum(0.0 if p.grad is None else p.grad.abs().sum().item() for p in ps)


def min_grad(m: LoRATTracker, adapter: str) -> float:
    return min(0.0 if p.grad is None else p.grad.abs().sum().item()
               for p in ex.lora_parameters(m.vit, adapter).values())


@pytest.mark.parametrize("experts", ["per_modality", "shared+per_modality"])
def test_expert_isolation(experts):
    m = tiny(experts=experts, x_branch={"depth": 0})
    randomise_lora(m)  # so that lora_A receives gradient too
    out = m(*batch(m, ["thermal", "depth", "thermal", "depth"]))
    out["score"].sum().backward()
    assert min_grad(m, "thermal") > 0 and min_grad(m, "depth") > 0
    assert grad_norm(m, "event") == 0
    if experts != "per_modality":
        assert min_grad(m, "shared") > 0
    assert all(p.requires_grad for p in ex.lora_parameters(m.vit).values())  # routing kept trainability

    m.zero_grad(set_to_none=True)
    m(*batch(m, ["thermal"] * 3))["box"].sum().backward()
    assert min_grad(m, "thermal") > 0
    assert grad_norm(m, "depth") == 0 and grad_norm(m, "event") == 0


def test_mixed_batch_equals_per_sample_runs():
    m = tiny(experts="shared+per_modality", heads="fused+unimodal")
    randomise_lora(m)
    m.eval()
    mods = ["event", "thermal", "depth", "thermal", "event"]
    z, zx, x, xx, zb, _ = batch(m, mods)
    with torch.no_grad():
        mixed = m(z, zx, x, xx, zb, mods)
        for i, mod in enumerate(mods):
            one = m(z[i : i + 1], zx[i : i + 1], x[i : i + 1], xx[i : i + 1], zb[i : i + 1], [mod])
            for k in mixed:
                torch.testing.assert_close(mixed[k][i : i + 1], one[k], rtol=1e-5, atol=1e-5)
        other = m(z, zx, x, xx, zb, ["depth"] * 5)["score"]
    assert not torch.allclose(other[0], mixed["score"][0])  # the experts do differ


# ---------------------------------------------------------------- input embedding
def test_fg_mask_cells():
    def cells(box, n):
        return box_cell_mask(torch.tensor([box]), n, n).view(n, n).nonzero().tolist()

    # exactly on cell borders: x in [1, 2), y in [1, 3) cells
    assert cells([0.25, 0.25, 0.5, 0.75], 4) == [[1, 1], [2, 1]]
    # 0.3 * 10 is 3.0000000000000004 in floats: still cells 1..2, not 1..3
    assert cells([0.1, 0.1, 0.3, 0.3], 10) == [[1, 1], [1, 2], [2, 1], [2, 2]]
    # partly outside the crop: the inside part is marked (x cells 0..1, y cell 3)
    assert cells([-0.2, 0.9, 0.3, 1.4], 4) == [[3, 0], [3, 1]]
    assert cells([1.1, 0.2, 1.5, 0.4], 4) == []  # wholly outside
    assert cells([0.6, 0.6, 0.6, 0.6], 4) == [[2, 2]]  # zero-size box marks its own cell


def test_lorat_input_embedding():
    m = tiny(x_branch={"depth": 0})
    with torch.no_grad():
        m.vit.patch_embed.proj.weight.zero_()
        m.vit.patch_embed.proj.bias.zero_()
    z, _, x, _, _, _ = batch(m, ["thermal"])
    zb = torch.tensor([[0.25, 0.5, 0.5, 1.0]])  # template grid 4x4: cols 1, rows 2..3
    fg = box_cell_mask(zb, 4, 4)
    with torch.no_grad():
        tz, tzx = m.embed_template(z, None, zb)
        tok = torch.cat([tz, m._search_tokens(x, m.vit.patch_embed)], dim=1)
    assert tzx is None  # no X branch
    pos = m.vit.pos_embed[0, 1:].reshape(8, 8, -1)  # drop the CLS position; search grid 8x8
    assert tok.shape == (1, 16 + 64, m.embed_dim)  # no CLS token
    tt = m.token_type.detach()
    exp_z = pos[:4, :4].reshape(16, -1) + torch.where(fg[0, :, None], tt[1], tt[0])
    torch.testing.assert_close(tok[0, :16], exp_z)  # template: top-left crop of the search pos grid
    torch.testing.assert_close(tok[0, 16:], pos.reshape(64, -1) + tt[2])
    assert fg[0].view(4, 4).nonzero().tolist() == [[2, 1], [3, 1]]


@pytest.mark.parametrize("heads,depth", [("fused", 2), ("fused+unimodal", 2), ("fused", 0)])
def test_template_embedded_once_gives_the_same_outputs(heads, depth):
    """Online tracking embeds the template once (embed_template) and runs forward_search per frame:
    the outputs must be the whole forward's, and features=False drops only the pooled features."""
    m = tiny(heads=heads, x_branch={"depth": depth}).eval()
    z, zx, x, xx, zb, mod = batch(m, ["thermal", "depth", "event"])
    with torch.no_grad():
        whole = m(z, zx, x, xx, zb, mod)
        tz, tzx = m.embed_template(z, zx, zb)
        split = m.forward_search(tz, tzx, x, xx, mod, features=False)
    assert set(whole) - set(split) == {"feat_rgb", "feat_x"}
    for k, v in split.items():
        torch.testing.assert_close(v, whole[k], rtol=0, atol=0)
    assert tz.shape == (3, 16, m.embed_dim) and (tzx is None) == (depth == 0)
    if depth:
        with pytest.raises(ValueError, match="zx and xx are required"):
            m.forward_search(tz, None, x, xx, mod)


# ---------------------------------------------------------------- loss
def grid_boxes(n: int, box) -> torch.Tensor:
    return torch.tensor(box).expand(1, n * n, 4).clone()


def test_perfect_prediction_has_zero_giou_loss():
    gt = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    pos = box_cell_mask(gt, 4, 4)
    score = torch.where(pos, 30.0, -30.0).float()
    loss, parts = lorat_loss(score, grid_boxes(4, gt[0].tolist()), gt, 4)
    assert int(pos.sum()) == 4
    assert parts["giou"].item() == pytest.approx(0, abs=1e-6)
    assert parts["iou"].item() == pytest.approx(1, abs=1e-6)
    assert loss.item() == pytest.approx(0, abs=1e-4)  # IoU eps keeps the target a hair below 1


def test_known_iou_is_the_bce_target():
    gt = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    pred = grid_boxes(4, [0.25, 0.25, 0.75, 0.5])  # half of the gt: IoU 0.5, GIoU 0.5
    score = torch.ones(1, 16, requires_grad=True)
    box = pred.clone().requires_grad_(True)
    loss, parts = lorat_loss(score, box, gt, 4)
    p = 1 / (1 + math.exp(-1))
    bce_pos = -(0.5 * math.log(p) + 0.5 * math.log(1 - p))
    bce_neg = -math.log(1 - p)
    assert parts["cls"].item() == pytest.approx((4 * bce_pos + 12 * bce_neg) / 4, rel=1e-5)
    assert parts["giou"].item() == pytest.approx(4 * 0.5 / 4, rel=1e-5)
    assert parts["iou"].item() == pytest.approx(0.5, rel=1e-5)
    loss.backward()
    # the IoU target is detached: the box gradient is that of the GIoU term alone
    box2 = pred.clone().requires_grad_(True)
    pos = box_cell_mask(gt, 4, 4)
    ((1 - giou(box2[pos], gt.expand(4, 4))).sum() / 4).backward()
    torch.testing.assert_close(box.grad, box2.grad)
    # sigmoid(1) - target: positives 0.5 away from p, negatives p away from 0
    g = score.grad.view(4, 4)
    assert g[1, 1].item() == pytest.approx((p - 0.5) / 4, rel=1e-5)
    assert g[0, 0].item() == pytest.approx(p / 4, rel=1e-5)


def test_no_positive_divides_by_one():
    gt = torch.tensor([[1.2, 1.2, 1.5, 1.5]])  # target outside the search crop
    score = torch.zeros(1, 16)
    loss, parts = lorat_loss(score, grid_boxes(4, [0.1, 0.1, 0.2, 0.2]), gt, 4)
    assert parts["cls"].item() == pytest.approx(16 * math.log(2), rel=1e-5)
    assert parts["giou"].item() == 0 and parts["iou"].item() == 0


def test_iou_helpers():
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert box_iou(a, torch.tensor([0.5, 0.0, 1.5, 1.0])).item() == pytest.approx(1 / 3)
    assert giou(a, torch.tensor([2.0, 0.0, 3.0, 1.0])).item() == pytest.approx(-1 / 3)
    assert giou(a, a).item() == pytest.approx(1)
    assert F.l1_loss(box_iou(a[None], a[None]), torch.ones(1)).item() < 1e-6


# ---------------------------------------------------------------- bench
def test_bench_lora_uses_less_memory_than_full():
    from unitrack.model.bench import compare_finetune, forward_latency

    cfg = OmegaConf.load(CONF / "lorat_tiny.yaml")
    res = compare_finetune(cfg, batch_size=4, steps=1)
    assert res["lora"]["params_trainable"] < res["full"]["params_trainable"]
    assert 0 < res["mem_ratio_lora_over_full"] < 1
    lat = forward_latency(cfg, steps=2, warmup=1)
    assert lat["forward_ms"] > 0 and lat["backbone_forward_ms"] > 0
