"""`unitrack report`: tables, degradation and unfinished runs from run folders (no training needed)."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf, open_dict

from tests.conftest import CONF, compose
from unitrack.report import build_report

_COMPOSED: dict[tuple, object] = {}


def _compose_run(overrides):
    """The train config of `overrides` (composed once per override list: composing costs ~0.3 s)."""
    seed = [o for o in overrides if o.startswith("seed=")]
    key = tuple(o for o in overrides if not o.startswith("seed="))
    if key not in _COMPOSED:
        cfg = compose("train", list(key))
        with open_dict(cfg):
            del cfg["hydra"]
        _COMPOSED[key] = cfg
    cfg = _COMPOSED[key].copy()
    if seed:
        cfg.seed = int(seed[0].split("=")[1])
    return cfg


def _run(root, name, overrides, final_sr, matrix_sr=None, finished=True, test=None, distance=None):
    """A run folder as `train` leaves it; `test`: {uid: (task, SR, PR)} written as its test_metrics.json."""
    cfg = _compose_run(overrides)
    d = root / name
    d.mkdir(parents=True)
    OmegaConf.save(cfg, d / "config.yaml")
    tasks = list(cfg.train.order)
    if not finished:
        (d / "stages.json").write_text(json.dumps([{"stage": 0}]))
        return
    final_sr = final_sr or {t: 0.5 for t in tasks}
    per = {t: {"SR": final_sr[t], "PR": final_sr[t] + 0.1} for t in tasks}
    pooled = sum(final_sr[t] for t in tasks) / len(tasks)
    R = matrix_sr or [[final_sr[t] for t in tasks]]
    m = {"mode": cfg.train.mode, "order": tasks, "tasks": tasks, "stages": tasks[: len(R)], "SR": R, "PR": R,
         "final": {"per_task": per, "overall": {"SR": pooled, "PR": pooled + 0.1}}, "params_trainable": 123}
    if len(R) == 3:
        m["SR_summary"] = {"average": pooled, "bwt": -0.1, "forgetting": 0.15}
    (d / "matrix.json").write_text(json.dumps(m))
    if test is not None:
        rec = {"split": "test", "per_sequence": {u: {"task": t, "SR": sr, "PR": pr} for u, (t, sr, pr) in test.items()}}
        if distance:
            rec["modality_distance"] = {"per_task": distance}
        (d / "test_metrics.json").write_text(json.dumps(rec))


def test_report_tables_degradation_and_unfinished(tmp_path):
    runs = tmp_path / "runs"
    for t, v in (("rgbt", 0.6), ("rgbd", 0.5), ("rgbe", 0.4)):
        _run(runs, f"single_{t}", [f"+experiment=single_{t}"], {t: v})
    serial = [[0.6, 0.1, 0.1], [0.5, 0.5, 0.1], [0.45, 0.45, 0.4]]
    _run(runs, "serial_replay/0", ["+experiment=serial_replay", "seed=0"], {"rgbt": 0.45, "rgbd": 0.45, "rgbe": 0.4},
         serial)
    _run(runs, "serial_replay/1", ["+experiment=serial_replay", "seed=1"], {"rgbt": 0.55, "rgbd": 0.45, "rgbe": 0.4},
         serial)
    _run(runs, "parallel", ["+experiment=parallel"], {"rgbt": 0.5, "rgbd": 0.4, "rgbe": 0.4})
    _run(runs, "broken", ["+experiment=serial"], {}, finished=False)
    out = tmp_path / "out"
    res = build_report(runs, out)
    assert res == {"finished": 6, "unfinished": 1,
                   "methods": ["parallel", "replay", "single_rgbd", "single_rgbe", "single_rgbt"]}
    md = (out / "report.md").read_text()
    assert "0.500 ± 0.071 [0.450, 0.550]" in md  # serial_replay rgbt SR over seeds 0,1: sample std, interval
    assert "`broken` (finetune): unfinished: 1 stage(s) evaluated" in md
    (runs / "broken" / "failed.json").write_text(json.dumps({"reason": "config key 'x': bad"}))
    (runs / "early").mkdir()  # failed before it wrote its config
    (runs / "early" / "failed.json").write_text(json.dumps({"reason": "RuntimeError: boom"}))
    assert build_report(runs, tmp_path / "out2", {"enabled": False})["unfinished"] == 2
    md = (tmp_path / "out2" / "report.md").read_text()
    assert "`broken` (finetune): failed: config key 'x': bad (1 stage(s) evaluated" in md
    assert "`early` (?): failed: RuntimeError: boom" in md
    cap = {(r["method"], r["task"]): float(r["degradation_SR"]) for r in csv.DictReader(open(out / "capacity.csv"))}
    assert abs(cap[("replay", "rgbt")] - (0.5 - 0.6)) < 1e-9
    assert abs(cap[("parallel", "rgbd")] - (0.4 - 0.5)) < 1e-9
    assert (out / "capacity.png").stat().st_size > 0
    assert len(list(out.glob("heatmap_*.png"))) == 2
    # task order: rgbt peaked at 0.6 and ends at 0.45 -> forgetting 0.15; rgbd 0.5 -> 0.45; rgbe trained last
    order = next(csv.DictReader(open(out / "orders.csv")))
    assert order["order"] == "TDE" and order["runs"] == "2" and float(order["bwt"]) == pytest.approx(-0.1)
    assert float(order["forgetting_rgbt"]) == pytest.approx(0.15)
    assert float(order["forgetting_rgbd"]) == pytest.approx(0.05) and order["forgetting_rgbe"] == ""
    # Chaudhry: rgbt best over stages 0..1 is 0.6 -> 0.15, rgbd over stage 1 only 0.5 -> 0.05: mean 0.10
    assert float(order["forgetting_chaudhry"]) == pytest.approx(0.10)


def test_chaudhry_forgetting_ignores_stages_before_the_task_and_can_be_negative():
    from unitrack.report import chaudhry_forgetting, forward_transfer

    R = [[0.2, 0.9, 0.1], [0.3, 0.4, 0.2], [0.5, 0.3, 0.6]]
    # task 0: max(R[0..1][0]) = 0.3 vs final 0.5 -> -0.2 (it improved); task 1: stage 1 only (0.4), not the
    # 0.9 it scored before it was trained -> 0.4 - 0.3 = 0.1
    assert chaudhry_forgetting(R) == pytest.approx([-0.2, 0.1])
    # FWT: R[0][1] - b1 and R[1][2] - b2 with b = (0, 0.5, 0.1)
    assert forward_transfer(R, [0.0, 0.5, 0.1]) == pytest.approx(((0.9 - 0.5) + (0.2 - 0.1)) / 2)


def test_runs_group_like_with_like_and_methods_come_from_the_tag(tmp_path):
    runs = tmp_path / "runs"
    sr = {"rgbt": 0.4, "rgbd": 0.4, "rgbe": 0.4}
    R = [[0.4, 0.1, 0.1], [0.3, 0.4, 0.1], [0.3, 0.3, 0.4]]
    _run(runs, "a0", ["+experiment=serial_der", "seed=0"], sr, R)
    _run(runs, "a1", ["+experiment=serial_der", "seed=1"], {**sr, "rgbt": 0.2}, R)
    _run(runs, "b0", ["+experiment=serial_der", "seed=0", "cl.der.beta=0"], {**sr, "rgbt": 0.9}, R)
    _run(runs, "c0", ["+experiment=serial", "cl=reservoir", "cl.replay.buffer_size=7", "seed=0",
                      "paths.output_root=/elsewhere"], sr, R)
    res = build_report(runs, tmp_path / "out")
    assert res["methods"] == ["der", "finetune"]  # c0 keeps its experiment's tag, whatever its fields
    rows = list(csv.DictReader(open(tmp_path / "out" / "methods.csv")))
    der = sorted((r for r in rows if r["method"] == "der"), key=lambda r: r["runs"])
    assert [r["runs"] for r in der] == ["1", "2"]  # beta=0 never averaged with beta=0.5
    assert der[0]["setting"] == "cl.der.beta=0.0" and der[1]["setting"] == "cl.der.beta=0.5"
    assert float(der[1]["rgbt_SR"]) == pytest.approx(0.3) and float(der[0]["rgbt_SR"]) == pytest.approx(0.9)
    fin = [r for r in rows if r["method"] == "finetune"]
    assert len(fin) == 1 and fin[0]["setting"] == "–"  # paths.output_root is not a setting


def test_every_experiment_is_tagged_and_the_study_presets_list_the_issues_rows():
    cfg = compose("train", ["hparams_search=paper_table"])
    listed = set(str(cfg.hydra.sweeper.params["+experiment"]).split(","))
    exps = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    # single-task x3, parallel, naive serial, serial + full replay, reservoir, DER++, LwF, EWC, experts + replay, SAMM
    assert listed == {"single_rgbt", "single_rgbd", "single_rgbe", "parallel", "serial", "serial_replay",
                      "serial_reservoir", "serial_der", "serial_lwf", "serial_ewc", "serial_experts", "serial_samm"}
    assert listed <= exps and str(cfg.hydra.sweeper.params.seed) == "0,1,2"
    cap = compose("train", ["hparams_search=capacity_sweep"]).hydra.sweeper.params
    assert (cap["+experiment"], str(cap["model.x_branch.depth"]), str(cap.seed)) == (
        "single_rgbt,single_rgbd,single_rgbe,parallel,serial_replay", "0,1,2,4", "0,1")
    order = compose("train", ["hparams_search=order_sweep"]).hydra.sweeper.params
    assert (order["+experiment"], str(order.seed)) == ("serial_replay", "0,1")
    tags = [compose("train", [f"+experiment={e}"]).method for e in sorted(exps)]
    assert all(tags) and len(set(tags)) == len(tags)


def test_mmd_is_zero_for_one_distribution_and_grows_with_shift():
    import torch

    from unitrack.eval.modality_distance import mmd_rbf

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    same = mmd_rbf(a, b)
    near, far = mmd_rbf(a, b + 0.5), mmd_rbf(a, b + 3.0)
    assert abs(same) < 0.01 and 0.01 < near < far
    # a hand case: two single-point clouds are the extreme (k_ab -> 0): MMD^2 -> 1 + 1 - 0 with 2 points each
    x = torch.tensor([[0.0], [0.0]])
    assert mmd_rbf(x, x + 100.0, bandwidth=1.0) == pytest.approx(2.0)


@pytest.mark.parametrize("preset,key,n", [("paper_table", "+experiment", 8), ("capacity_sweep", "model.x_branch.depth", 4),
                                          ("order_sweep", "train.order", 6), ("rank_sweep", "model.lora.rank", 5),
                                          ("buffer_sweep", "cl.replay.buffer_size", 3)])
def test_sweep_presets_compose_as_multiruns(preset, key, n):
    cfg = compose("train", [f"hparams_search={preset}"])
    assert cfg.hydra.mode.name == "MULTIRUN"
    value = str(cfg.hydra.sweeper.params[key])
    assert value.count(",") + 1 >= n if key != "train.order" else value.count("],[") + 1 == n


def test_a_plain_override_replaces_a_presets_sweep_list():
    """How docs/results.md cut the presets down: `seed=0 model.x_branch.depth=0,2,4` on the command line."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose("train", ["hparams_search=capacity_sweep"])
    preset = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]  # what BasicSweeper._parse_config does
    parse = OverridesParser.create().parse_overrides
    jobs = BasicSweeper.split_arguments(parse(preset + ["model.x_branch.depth=0,2,4"]), None)[0]
    assert len(jobs) == 5 * 3 * 2  # x 2 seeds
    assert sorted({j[1] for j in jobs}) == [f"model.x_branch.depth={d}" for d in (0, 2, 4)]


@pytest.mark.slow
def test_every_experiment_trains_and_reports_end_to_end(tmp_path, synth_root):
    """Each experiment config through `train` (tiny: 2 steps a stage) and then `report` over all of them."""
    from tests.conftest import tiny_train_overrides
    from unitrack.train.unification import train

    exps = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
    runs = tmp_path / "runs"
    for exp in exps:
        cfg = compose("train", [f"+experiment={exp}", *tiny_train_overrides(synth_root, tmp_path),
                                "train.steps_per_stage=2", "data.val_max_frames=4"])
        with open_dict(cfg):
            del cfg["hydra"]
        res = train(cfg, runs / exp)
        assert res["SR"] and all(0.0 <= v <= 1.0 for row in res["SR"] for v in row), exp
    out = build_report(runs, tmp_path / "out", {"enabled": False})
    tags = {compose("train", [f"+experiment={e}"]).method for e in exps}
    assert out["finished"] == len(exps) and out["unfinished"] == 0 and set(out["methods"]) == tags


TASK_SEQS = {t: [f"{t[-1]}_{i}" for i in range(3)] for t in ("rgbt", "rgbd", "rgbe")}


def _per_seq(sr, pr=None, tasks=("rgbt", "rgbd", "rgbe")):
    """{uid: (task, SR, PR)} from per-uid functions of the uid."""
    return {u: (t, sr(u), (pr or sr)(u)) for t in tasks for u in TASK_SEQS[t]}


def _base(seed):
    rng = {u: i for i, u in enumerate(u for us in TASK_SEQS.values() for u in us)}
    return lambda u: 0.3 + 0.05 * ((rng[u] * 7 + seed * 3) % 5)  # varies over sequences and seeds


def _claims(out):
    return {(r["claim"], r["comparison"], r["metric"]): r for r in csv.DictReader(open(out / "claims.csv"))}


def test_claims_on_hand_made_records_have_the_known_differences_and_verdicts(tmp_path):
    """Constant paired differences give zero-width intervals at the constant; a difference that is +x on
    half the sequences and -x on the other half is inconclusive; the degradation order and its rank
    correlation with the recorded modality distance follow from the construction."""
    runs = tmp_path / "runs"
    deg = {"rgbt": 0.3, "rgbd": 0.2, "rgbe": 0.1}
    task_of = {u: t for t, us in TASK_SEQS.items() for u in us}
    flip = {u: (1 if i % 2 else -1) for i, u in enumerate(task_of)}
    for seed in range(3):
        b = _base(seed)
        s = f"seed={seed}"
        _run(runs, f"parallel_{seed}", ["+experiment=parallel", s], {}, test=_per_seq(b))
        _run(runs, f"replay_{seed}", ["+experiment=serial_replay", s], {},
             test=_per_seq(lambda u, b=b: b(u) + 0.03, lambda u, b=b: b(u) - 0.02),
             distance={"rgbt": 0.9, "rgbd": 0.5, "rgbe": 0.2})
        _run(runs, f"finetune_{seed}", ["+experiment=serial", s], {}, test=_per_seq(lambda u, b=b: b(u) - 0.1))
        _run(runs, f"ewc_{seed}", ["+experiment=serial_ewc", s], {},
             test=_per_seq(lambda u, b=b: b(u) - 0.1 + 0.2 * flip[u] * (1 if u[-1] != "2" else 0)))
        for t in deg:
            _run(runs, f"single_{t}_{seed}", [f"+experiment=single_{t}", s], {},
                 test=_per_seq(lambda u, b=b: b(u) + 0.03 + deg[task_of[u]], tasks=(t,)))
    out = tmp_path / "out"
    build_report(runs, out, {"enabled": False}, {"resamples": 1000})
    c = _claims(out)
    row = c[("serial + replay beats parallel", "replay (TDE) − parallel", "pooled SR")]
    assert [float(row[k]) for k in ("estimate", "lo", "hi")] == pytest.approx([0.03, 0.03, 0.03])
    assert row["verdict"] == "reproduced" and row["seeds"] == "3" and row["sequences"] == "9"
    row = c[("serial + replay beats parallel", "replay (TDE) − parallel", "pooled PR")]
    assert float(row["estimate"]) == pytest.approx(-0.02) and row["verdict"] == "contradicted"
    assert c[("CL cuts unification degradation", "replay (TDE) − finetune (TDE)", "pooled SR")]["verdict"] == "reproduced"
    ewc = c[("CL cuts unification degradation", "ewc (TDE) − finetune (TDE)", "pooled SR")]
    assert float(ewc["lo"]) < 0 < float(ewc["hi"]) and ewc["verdict"] == "inconclusive"
    for t, d in deg.items():
        row = c[("unification degrades each task", f"replay (TDE) − single_{t}", f"{t} SR")]
        assert float(row["estimate"]) == pytest.approx(-d) and row["verdict"] == "reproduced"
        assert row["sequences"] == "3"
    row = c[("degradation ranks RGBT > RGBD > RGBE", "replay (TDE): degradation rgbt − rgbd", "SR")]
    assert float(row["estimate"]) == pytest.approx(0.1) and row["verdict"] == "reproduced"
    row = c[("degradation follows modality distance", "replay (TDE): ρ(MMD², degradation)", "SR")]
    assert float(row["estimate"]) == pytest.approx(1.0) and row["verdict"] == "reproduced"
    md = (out / "report.md").read_text()
    assert "1000 resamples (generator seed 0)" in md and "**reproduced**" in md
    assert (out / "claims.png").stat().st_size > 0 and (out / "test_methods.png").stat().st_size > 0
    tm = {r["method"]: r for r in csv.DictReader(open(out / "test_methods.csv"))}
    assert float(tm["finetune"]["pooled_SR_sd"]) > 0  # sample std over the three seeds' pooled scores
    # the same records give the same report, figure for figure
    build_report(runs, tmp_path / "again", {"enabled": False}, {"resamples": 1000})
    assert (tmp_path / "again" / "claims.csv").read_text() == (out / "claims.csv").read_text()


def test_capacity_and_order_claims_from_hand_made_records(tmp_path):
    runs = tmp_path / "runs"
    for seed in range(2):
        b, s = _base(seed), f"seed={seed}"
        for depth in (0, 1, 2):
            d = f"model.x_branch.depth={depth}"
            _run(runs, f"replay_d{depth}_{seed}", ["+experiment=serial_replay", d, s], {}, test=_per_seq(b))
            for t in TASK_SEQS:  # the gap to the single-task tracker shrinks as the X branch deepens
                _run(runs, f"single_{t}_d{depth}_{seed}", [f"+experiment=single_{t}", d, s], {},
                     test=_per_seq(lambda u, b=b, depth=depth: b(u) + 0.2 / (1 + depth), tasks=(t,)))
        for order in ("[rgbd,rgbt,rgbe]", "[rgbe,rgbd,rgbt]"):
            shift = 0.001 if order.startswith("[rgbd") else 0.0
            _run(runs, f"order_{order[1:5]}_{seed}", ["+experiment=serial_replay", f"train.order={order}", s], {},
                 test=_per_seq(lambda u, b=b, shift=shift: b(u) + shift))
    out = tmp_path / "out"
    build_report(runs, out, {"enabled": False}, {"resamples": 500})
    c = _claims(out)
    row = c[("degradation falls as capacity grows", "replay: ρ(depth, unified − single)", "pooled SR")]
    assert float(row["estimate"]) == pytest.approx(1.0) and row["verdict"] == "reproduced"
    cap = {(r["x_branch_depth"], r["task"]): float(r["difference"]) for r in csv.DictReader(open(out / "capacity_test.csv"))}
    assert cap[("1.0", "pooled")] == pytest.approx(-0.1) and cap[("0.0", "rgbt")] == pytest.approx(-0.2)
    # three orders (the depth-2 replay runs, the tiny model's default, have the default order): spread 0.001
    row = next(r for (claim, _, _), r in c.items() if claim == "task order matters little")
    assert float(row["estimate"]) == pytest.approx(0.001) and row["verdict"] == "reproduced"
    assert (out / "capacity_test.png").stat().st_size > 0 and (out / "orders_test.png").stat().st_size > 0
