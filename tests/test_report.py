"""`unitrack report`: tables, degradation and unfinished runs from run folders (no training needed)."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf, open_dict

from tests.conftest import CONF, compose
from unitrack.report import build_report


def _run(root, name, overrides, final_sr, matrix_sr=None, finished=True):
    cfg = compose("train", overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    d = root / name
    d.mkdir(parents=True)
    OmegaConf.save(cfg, d / "config.yaml")
    tasks = list(cfg.train.order)
    if not finished:
        (d / "stages.json").write_text(json.dumps([{"stage": 0}]))
        return
    per = {t: {"SR": final_sr[t], "PR": final_sr[t] + 0.1} for t in tasks}
    pooled = sum(final_sr[t] for t in tasks) / len(tasks)
    R = matrix_sr or [[final_sr[t] for t in tasks]]
    m = {"mode": cfg.train.mode, "order": tasks, "tasks": tasks, "stages": tasks[: len(R)], "SR": R, "PR": R,
         "final": {"per_task": per, "overall": {"SR": pooled, "PR": pooled + 0.1}}, "params_trainable": 123}
    if len(R) == 3:
        m["SR_summary"] = {"average": pooled, "bwt": -0.1, "forgetting": 0.15}
    (d / "matrix.json").write_text(json.dumps(m))


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
    assert "0.500 ± 0.050" in md  # serial_replay rgbt SR over seeds 0,1
    assert "`broken` (finetune): unfinished: 1 stage(s) evaluated" in md
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


def test_every_experiment_is_tagged_and_in_the_paper_table():
    cfg = compose("train", ["hparams_search=paper_table"])
    listed = set(str(cfg.hydra.sweeper.params["+experiment"]).split(","))
    exps = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    assert listed == exps - {"rgb_foundation"}  # the foundation is the study's start, not a row of its table
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
    assert len(jobs) == 5 * 3
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
