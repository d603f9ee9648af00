"""The ways users start unitrack, each through the real program in a subprocess: the `unitrack` dispatcher and
the per-verb console scripts, `python -m unitrack`, plain DDP (Lightning's subprocess launcher re-runs the
program), an installed wheel, a multirun whose first job fails, and `--help` / completion without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from tests.conftest import tiny_train_overrides
from unitrack.cli import VERBS

BIN = Path(sys.executable).parent  # the console scripts are installed beside the venv's python
ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", **extra}


def _run(cmd: list, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_every_verb_answers_help_cfg_and_info_without_torch(tmp_path):
    """--help, --cfg job and --info of every verb's app, in one process that never imports torch."""
    code = f"""
import sys
from hydra.core.global_hydra import GlobalHydra
from importlib import import_module
for verb in {list(VERBS)!r}:
    for flags in (["--help"], ["--cfg", "job"], ["--info", "config"]):
        GlobalHydra.instance().clear()
        sys.argv = [f"unitrack-{{verb}}", *flags]
        try:
            import_module(f"unitrack.apps.{{verb}}").main()
        except SystemExit as e:
            assert not e.code, (verb, flags, e.code)
assert "torch" not in sys.modules, "a verb's --help imported torch"
print("OK no torch")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("OK no torch")
    assert "train is powered by Hydra" in r.stdout and "== Config ==" in r.stdout


def test_console_scripts_dispatcher_python_m_and_completion(tmp_path):
    for verb in VERBS:
        assert (BIN / f"unitrack-{verb}").is_file(), f"console script unitrack-{verb} is not installed"
    r = _run([BIN / "unitrack", "--help"], tmp_path)
    assert r.returncode == 0 and all(f"  {v}" in r.stdout for v in VERBS)
    # a Trainer argument the config does not list is set without Hydra's `+`, by either entry point
    for cmd in ([BIN / "unitrack", "train"], [sys.executable, "-m", "unitrack", "train"], [BIN / "unitrack-train"]):
        r = _run([*cmd, "--cfg", "job", "trainer.strategy=ddp", "trainer.num_nodes=2"], tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "strategy: ddp" in r.stdout and "num_nodes: 2" in r.stdout
    bad = _run([BIN / "unitrack", "train", "trainer.strategyy=ddp"], tmp_path)
    assert bad.returncode == 2 and "trainer.strategyy" in bad.stderr and "Traceback" not in bad.stderr
    # Hydra's shell completion names the program that exists, and answers a query
    r = _run([BIN / "unitrack-train", "-sc", "install=bash"], tmp_path)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("-F hydra_bash_completion unitrack-train")
    q = subprocess.run([str(BIN / "unitrack-train"), "-sc", "query=bash"], cwd=tmp_path, capture_output=True,
                       text=True, env=_env(COMP_LINE="unitrack-train trainer.dev"), timeout=120)
    assert "trainer.devices=" in q.stdout.split()


def _weights(run: Path, stage: str) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / stage, map_location="cpu", weights_only=False)["state_dict"]


def test_plain_ddp_from_the_console_script_and_python_m_equals_ddp_spawn(tmp_path, synth_root):
    """trainer.strategy=ddp... on one machine: Lightning re-runs the program once per extra device. Two gloo
    processes started by `unitrack train` and by `python -m unitrack train` train a serial_replay run to its
    matrix.json, equal to the same run under ddp_spawn (which runs only the fit function in its children)."""
    base = ["+experiment=serial_replay", "model.init=null", *tiny_train_overrides(synth_root, tmp_path),
            "trainer.devices=2"]
    plain = ["trainer.strategy=ddp_find_unused_parameters_true"]
    runs = {"script": [BIN / "unitrack", "train", *base, *plain],
            "python_m": [sys.executable, "-m", "unitrack", "train", *base, *plain],
            "spawn": [BIN / "unitrack", "train", *base, "trainer=ddp_cpu"]}
    matrices = {}
    for name, cmd in runs.items():
        r = _run([*cmd, f"hydra.run.dir={tmp_path / name}"], tmp_path)
        assert r.returncode == 0, f"{name}: {r.stderr[-3000:]}"
        matrices[name] = json.loads((tmp_path / name / "matrix.json").read_text())
        assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in r.stdout + r.stderr, name
    for name in ("script", "python_m"):
        for key in ("SR", "PR", "stages", "exposure"):
            assert matrices[name][key] == matrices["spawn"][key], (name, key)
        w, ref = _weights(tmp_path / name, "stage_3_rgbe.ckpt"), _weights(tmp_path / "spawn", "stage_3_rgbe.ckpt")
        assert all(torch.equal(w[k], ref[k]) for k in ref), name


def test_a_multirun_goes_on_after_a_failed_job_and_names_it(tmp_path, synth_root):
    sweep = tmp_path / "sweep"
    r = _run([BIN / "unitrack", "train", "-m", "+experiment=single_rgbt", "model.init=null",
              *tiny_train_overrides(synth_root, tmp_path), "model.x_branch.depth=9,1", f"hydra.sweep.dir={sweep}"],
             tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    assert (sweep / "1" / "matrix.json").is_file()  # the job after the failed one ran
    failed = json.loads((sweep / "0" / "failed.json").read_text())
    assert "model.x_branch.depth" in failed["reason"] and "model.x_branch.depth=9" in failed["overrides"]
    summary = r.stderr[r.stderr.index("job(s) of this multirun failed"):]
    assert str(sweep / "0") in summary and "model.x_branch.depth" in summary and str(sweep / "1") not in summary
    assert "Traceback" not in r.stderr


def test_the_wheel_carries_the_configs_and_runs_from_anywhere(tmp_path):
    """`pip wheel .`, installed (no deps) into a throwaway venv that sees this venv's packages, runs from a
    folder outside the checkout: the configs come from the package (pkg://unitrack.conf)."""
    import shutil
    import site

    src, dist = tmp_path / "src", tmp_path / "dist"  # a copy: setuptools writes build/ into the source folder
    src.mkdir()
    for part in ("pyproject.toml", "README.md", "conf", "unitrack"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, src / part, **(
            {"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / part).is_dir() else {}))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(dist)], capture_output=True, text=True, timeout=600, env=_env())
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next(dist.glob("unitrack-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    yamls = sorted(n for n in names if n.startswith("unitrack/conf/") and n.endswith(".yaml"))
    assert len(yamls) == len(list((ROOT / "conf").rglob("*.yaml"))) and "unitrack/conf/train.yaml" in yamls
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "unitrack").rglob("__init__.py")}
    assert all(f"{p}/__init__.py" in names for p in packages), sorted(packages - {n.rsplit("/", 1)[0] for n in names})
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    vpy = venv / "bin" / "python"
    own = subprocess.run([str(vpy), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    # this venv's packages (torch, hydra, ...) behind the wheel's own install, not its editable unitrack
    Path(own, "project_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "--no-index",
                        "-q", str(wheel)], capture_output=True, text=True, timeout=600, env=_env())
    assert r.returncode == 0, r.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    vbin = venv / "bin"
    where = _run([vpy, "-c", "import unitrack, unitrack.conf; print(unitrack.__file__, unitrack.conf.__file__)"], away)
    assert where.stdout.count(str(venv)) == 2, where.stdout
    assert _run([vbin / "unitrack", "--help"], away).returncode == 0
    cfg = _run([vbin / "unitrack-train", "--cfg", "job", "+experiment=serial_replay"], away)
    assert cfg.returncode == 0 and "method: replay" in cfg.stdout, cfg.stderr[-2000:]
    syn = _run([vbin / "unitrack", "synth", f"out={away / 'data'}", "synth.sequences=1", "synth.test_sequences=1",
                "synth.frames=8", "synth.size=[64,48]", "synth.rgb_sequences=0", "calibrate=false",
                f"hydra.run.dir={away / 'run'}"], away)
    assert syn.returncode == 0, syn.stderr[-2000:]
    assert (away / "data" / "unibench.txt").is_file() and (away / "run" / "synth.json").is_file()
