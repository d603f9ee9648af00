"""Config schema: a bad override is refused in well under a second, before torch is imported.

Three checks on the config Hydra would compose (composed here with Hydra's compose API, which costs
~0.3 s, while importing torch costs ~11 s):

- unknown keys: a key that is not in the config composed from the same config-group choices (the
  defaults plus `+experiment=...`) is a typo, whether added with `+` or not; the error suggests the
  closest known key. Keys under an empty mapping (`options: {}`) and keyword arguments of a `_target_`
  (read from its source, not imported) are allowed.
- types: a value must have the type of the composed default (int, float, bool, str, list, mapping), so
  the schema covers every key of every group, including keys other modules add later, with no list.
- ranges and choices: `RULES`, a table of dotted-key patterns for the keys whose valid values are not
  implied by their type (`optim.lr > 0`, `trainer.precision` in Lightning's names, `train.mode` ...).

Every failure is a `ConfigError` naming the key; the CLI prints it as one line and exits with code 2.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib.util
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from unitrack import TRAIN_TASKS, conf_dir
from unitrack.errors import ConfigError
from unitrack.fingerprint import flatten  # dotted key -> leaf (empty containers are leaves)

#: unitrack.eval.metrics.CURVE_PROTOCOLS + VOT (tests/test_schema.py keeps the two in step).
PROTOCOLS = ("pytracking", "lasher", "lasher_rgbt", "visevent", "got10k", "vot")
#: unitrack.eval.results.EXPORT_FOLDERS (tests/test_schema.py keeps the two in step).
EXPORTS = ("got10k", "vot", "pytracking", "lasher", "gtot")
#: unitrack.eval.results.BOX_FORMATS.
RESULTS_FORMATS = ("xywh", "corners")
RESULTS_LAYOUTS = ("pytracking", "pytracking_nested", "got10k", "vot")
#: Lightning 2.x precision names (lightning.fabric.connector._PRECISION_INPUT) and their legacy aliases.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true",
              "bf16-mixed", "32-true", "64-true", "64", "32", "16", "bf16")
#: Hydra plugins the `cluster` extra provides, by the config group option that needs them.
PLUGINS = {"hydra/launcher": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
           "hydra/sweeper": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
           "hparams_search=optuna": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper")}
#: Hydra flags that take a value (dropped with it before composing).
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i"}
#: Shell completion: its arguments are partial words, not overrides (nothing to check).
_FLAGS_NO_CHECK = {"--shell-completion", "-sc"}
#: Flags that change which config is composed: the schema then leaves the check to Hydra.
_FLAGS_OTHER_CONFIG = {"--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd",
                       "--experimental-rerun"}
_MAX_COMPOSE = 24


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive(v: Any) -> str | None:
    return None if _number(v) and v > 0 else "must be a finite number > 0"


def non_negative(v: Any) -> str | None:
    return None if _number(v) and v >= 0 else "must be a finite number >= 0"


def fraction(v: Any) -> str | None:
    return None if _number(v) and 0 <= v <= 1 else "must be a finite number in [0, 1]"


def below_one(v: Any) -> str | None:
    return None if _number(v) and 0 <= v < 1 else "must be a finite number in [0, 1)"


def positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "must be an integer > 0"


def non_negative_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be an integer >= 0"


def one_of(*choices: Any, allow_none: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if (v is None and allow_none) or (v is not None and str(v) in map(str, choices)):
            return None
        return f"must be one of {', '.join(map(str, choices))}" + (" or null" if allow_none else "")
    return check


def each(rule: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, (list, tuple)):
            return f"must be a list, got {v!r}"
        for x in v:
            if (msg := rule(x)) is not None:
                return f"every item {msg}, got item {x!r} in {list(v)!r}"
        return None
    return check


def devices(v: Any) -> str | None:
    if v == "auto" or positive_int(v) is None or (isinstance(v, (list, tuple)) and all(
            non_negative_int(x) is None for x in v)):
        return None
    return "must be 'auto', an integer > 0 or a list of device indices"


def device(v: Any) -> str | None:
    s = str(v)
    if s in ("auto", "cpu", "cuda", "mps") or (s.startswith("cuda:") and s[5:].isdigit()):
        return None
    return f"unknown device {v!r}; choose auto, cpu, cuda or cuda:N"


def betas(v: Any) -> str | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(below_one(b) is None for b in v):
        return None
    return "must be two finite numbers in [0, 1)"


def results_folders(v: Any) -> str | None:
    if isinstance(v, str) and v:
        return None
    if isinstance(v, (list, tuple)) and v and all(isinstance(x, str) and x for x in v):
        return None
    return "must be a results folder or a non-empty list of them ([DIR_A,DIR_B])"


def file_name(v: Any) -> str | None:
    s = str(v)
    if s and s not in (".", "..") and not any(c in s for c in '/\\:*?"<>|') and s.strip() == s:
        return None
    return "must be a plain file name (no path separators or * ? : < > | quotes)"


#: dotted-key pattern (fnmatch) -> rule; a rule returns None when the value is valid, else what is wrong.
RULES: dict[str, Callable[[Any], str | None]] = {
    "seed": non_negative_int,
    "resume": one_of("auto", "force"),
    "device": device,
    "protocol": one_of(*PROTOCOLS),
    "eval.protocol": one_of(*PROTOCOLS),
    "results_layout": one_of(*RESULTS_LAYOUTS),
    "results": results_folders,
    "results_format": one_of(*RESULTS_FORMATS),
    "modality": one_of("thermal", "depth", "event"),
    "train.mode": one_of("serial", "parallel", "single"),
    "train.order": each(one_of(*TRAIN_TASKS)),
    "train.steps_per_stage": positive_int,
    "train.parallel_steps_factor": positive,
    "train.ckpt_every": positive_int,
    "train.unimodal_loss_weight": non_negative,
    "optim.lr": positive,
    "optim.weight_decay": non_negative,
    "optim.betas": betas,
    "optim.warmup_fraction": fraction,
    "optim.min_lr_ratio": fraction,
    "optim.warmup_start_ratio": fraction,
    "trainer.precision": one_of(*PRECISIONS),
    "trainer.devices": devices,
    "trainer.num_nodes": positive_int,
    "trainer.gradient_clip_val": lambda v: None if v is None else non_negative(v),
    "trainer.log_every_n_steps": positive_int,
    "trainer.deterministic": one_of(True, False, "warn"),
    "data.ratios.*": non_negative,
    "data.batch_size": positive_int,
    "data.num_workers": non_negative_int,
    "data.val_sequences": positive_int,
    "data.val_max_frames": positive_int,
    "data.synth.sequences": lambda v: None if v is None else positive_int(v),
    "data.synth.test_sequences": lambda v: None if v is None else positive_int(v),
    "data.synth.rgb_sequences": lambda v: None if v is None else non_negative_int(v),
    "data.synth.frames": lambda v: None if v is None else positive_int(v),
    "data.synth.seed": lambda v: None if v is None else non_negative_int(v),
    "test.max_frames": lambda v: None if v is None else positive_int(v),
    "test.distance_samples": positive_int,
    "stats.resamples": positive_int,
    "stats.seed": non_negative_int,
    "stats.level": lambda v: None if _number(v) and 0 < v < 1 else "must be a number in (0, 1)",
    "stats.order_margin": positive,
    "data.max_gap": positive_int,
    "model.lora.rank": positive_int,
    "model.lora.alpha": positive,
    "model.lora.dropout": below_one,
    "model.finetune": one_of("lora", "full", "frozen"),
    "model.experts": one_of("shared", "per_modality", "shared+per_modality"),
    "model.heads": one_of("fused", "fused+unimodal"),
    "model.x_branch.depth": non_negative_int,
    "model.template_size": positive_int,
    "model.search_size": positive_int,
    "eval.batch_size": positive_int,
    "eval.workers": non_negative_int,
    "eval.decode": one_of("inline", "thread", "process", "gpu"),
    "eval.window_weight": fraction,
    "eval.drop_modality": one_of("rgb", "x", allow_none=True),
    "eval.x_noise": non_negative,
    "eval.export": each(one_of(*EXPORTS)),
    "eval.export_tracker": file_name,
    "eval.amp": one_of(False, True, "bf16", "fp16"),
    "eval.pad": one_of("current", "frame0"),
    "cl.replay.kind": one_of("none", "full", "reservoir", "balanced"),
    "cl.replay.buffer_size": non_negative_int,
    "cl.replay.ratio": below_one,
    # choices owned by torch-importing modules, mirrored here (tests/test_schema.py keeps them in step)
    "train.budget": one_of("stage", "samples", "exposure"),
    "train.schedule": one_of("restart", "continue"),
    "train.optimizer_state": one_of("reset", "carry"),
    "data.crop.jitter": one_of("lorat", "square"),
    "data.crop.on_fail": one_of("resample", "centre"),
    "data.augment.flip": one_of("pair", "image"),
    "data.augment.grayscale_p": fraction,
    "data.augment.enabled": one_of(True, False),
    "data.augment.three_augment": one_of(True, False),
    "data.crop.scale_jitter": non_negative,
    "data.crop.center_jitter": non_negative,
    "data.crop.min_visible_px": non_negative,
    "model.pos_resample": one_of("timm", "lorat"),
    "model.lora.init": one_of("peft", "lorat"),
    "model.head_init": one_of("torch", "lorat"),
    "cl.replay.mode": one_of("share", "append"),
    "cl.kd.teacher": one_of("previous", "pretrained"),
    "cl.kd.inputs": one_of("replay", "current", "both"),
    "cl.*.weight": non_negative,
    "cl.*.temperature": positive,
}


# ----------------------------------------------------------------------------------------------- composing
def _overrides_of(argv: Iterable[str]) -> list[str] | None:
    """The key=value overrides of a Hydra command line (flags dropped); None: leave the check to Hydra."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            if "=" not in a:
                continue
        if a in _FLAGS_OTHER_CONFIG or any(a.startswith(f + "=") for f in _FLAGS_OTHER_CONFIG):
            return None
        if a.startswith("-"):
            skip = a in _FLAGS_WITH_VALUE
        else:
            out.append(a)
    return out


def _is_group(key: str) -> bool:
    return (conf_dir() / key.replace(".", "/")).is_dir()


def _plugin_hint(overrides: list[str]) -> None:
    """A launcher/sweeper that needs the `cluster` extra: say so instead of Hydra's 'could not load'."""
    for o in overrides:
        key = o.lstrip("+~").split("=", 1)[0]
        for want, (module, dist) in PLUGINS.items():
            builtin = o.split("=", 1)[-1] == "basic"  # Hydra's own launcher/sweeper
            hit = o.lstrip("+") == want if "=" in want else key == want and not builtin
            if hit and _missing(module):
                raise ConfigError(key, f"'{o}' needs the {dist} Hydra plugin, which is not installed; "
                                  "install the cluster extra: pip install -e '.[cluster]'")


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def _expand(overrides: list[str]) -> list[list[str]]:
    """Concrete override lists for a sweep: every value of every choice/range sweep at least once."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(_first_key(overrides, str(e)), _one_line(e)) from None
    options: list[list[str]] = []
    for raw, p in zip(overrides, parsed):
        if not p.is_sweep_override():
            options.append([raw])
            continue
        try:
            vals = list(p.sweep_string_iterator())
        except Exception:  # interval(...) sweeps (Optuna) have no finite list: the sweeper checks them
            vals = []
        prefix = raw.split("=", 1)[0]
        options.append([f"{prefix}={v}" for v in vals])
    first = [o[0] for o in options if o]
    combos = [first]
    for i, o in enumerate(options):
        for v in o[1:]:
            if len(combos) >= _MAX_COMPOSE:
                break
            combos.append([v if j == i else c for j, c in enumerate(first)] if o else first)
    return combos


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return msg[:400]


def _first_key(overrides: list[str], msg: str) -> str:
    for o in overrides:
        k = o.lstrip("+~").split("=", 1)[0]
        if f"'{k}'" in msg or k in msg:
            return k
    return overrides[0].lstrip("+~").split("=", 1)[0] if overrides else "?"


def _compose(verb: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name=verb):
            return compose(config_name=verb, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as e:
        key = _first_key(overrides, str(e))
        return ConfigError(key, _one_line(e))


# ------------------------------------------------------------------------------------------------ checking
def _containers(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        out[prefix] = node
        for k, v in node.items():
            out.update(_containers(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _show(v: Any) -> str:
    return "null" if v is None else repr(v)


def _interp(v: Any) -> bool:
    return isinstance(v, str) and "${" in v


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, dict):
        return "mapping"
    return type(v).__name__


def _type_error(default: Any, value: Any) -> str | None:
    if default is None or default == "???" or _interp(default) or _interp(value):
        return None
    d, v = _kind(default), _kind(value)
    if value is None:
        return f"must be {'an' if d == 'int' else 'a'} {d}, got null" if d in ("int", "float", "bool") else None
    ok = {"bool": ("bool",), "int": ("int",), "float": ("float", "int"), "str": ("str", "int", "float", "bool"),
          "list": ("list",), "mapping": ("mapping",)}.get(d, (d,))
    if v in ok:
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        return None
    return f"must be {'an' if d == 'int' else 'a'} {d} (like the default {default!r}), got {v} {value!r}"


def _target_params(target: str, depth: int = 0) -> set[str] | None:
    """Keyword parameters of a `_target_` class/function read from its source (no import); None = any."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            spec = importlib.util.find_spec(parts[0])
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        base = Path(next(iter(spec.submodule_search_locations)))
        mod = base.joinpath(*parts[1:cut])
        for f in (mod.with_suffix(".py"), mod / "__init__.py"):
            if f.is_file():
                return _params_in(f, parts[cut:], depth)
    return None


def _params_in(path: Path, names: list[str], depth: int = 0) -> set[str] | None:
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return None
    node: Any = tree
    for i, n in enumerate(names):
        found = next((c for c in ast.iter_child_nodes(node) if isinstance(c, (ast.ClassDef, ast.FunctionDef))
                      and c.name == n), None)
        if found is None and node is tree and depth < 4:  # re-exported: follow `from pkg.mod import Name`
            for imp in (c for c in tree.body if isinstance(c, ast.ImportFrom) and c.module and not c.level):
                if any(a.name == n and a.asname is None for a in imp.names):
                    return _target_params(".".join([imp.module, *names[i:]]), depth + 1)
        if found is None:
            return None
        node = found
    if isinstance(node, ast.ClassDef):
        node = next((c for c in node.body if isinstance(c, ast.FunctionDef) and c.name == "__init__"), None)
        if node is None:
            return None
    a = node.args
    if a.kwarg is not None:
        return None
    return {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)} - {"self"}


def _allowed_addition(key: str, base_containers: dict[str, Any]) -> bool:
    """An added key is fine under an empty mapping (free-form options) or as a `_target_`'s parameter."""
    parent, _, name = key.rpartition(".")
    while parent and parent not in base_containers:
        parent, _, name = parent.rpartition(".")
    node = base_containers.get(parent)
    if node is None:
        return False
    if node == {}:
        return True
    target = node.get("_target_") if isinstance(node, dict) else None
    if isinstance(target, str):
        params = _target_params(target)
        return params is None or name in params
    return False


def check_config(full: Any, base: Any) -> None:
    """Unknown keys, types against `base` (same group choices, no value overrides) and `RULES`."""
    from omegaconf import OmegaConf

    f = OmegaConf.to_container(full, resolve=False)
    b = OmegaConf.to_container(base, resolve=False)
    fl, bl, bc = flatten(f), flatten(b), _containers(b)
    for key in fl:
        if key in bl or key in bc:
            continue
        if not _allowed_addition(key, bc):
            near = difflib.get_close_matches(key, list(bl), n=1, cutoff=0.6)
            raise ConfigError(key, "unknown key (not in the composed defaults)"
                              + (f"; did you mean '{near[0]}'?" if near else ""))
    for key, value in fl.items():
        ruled = any(fnmatch.fnmatchcase(key, p) for p in RULES)  # a rule states the type itself
        if key in bl and not ruled and (msg := _type_error(bl[key], value)) is not None:
            raise ConfigError(key, msg)
    for key, value in fl.items():
        if _interp(value) or (value is None and bl.get(key) is None):  # null where null is the default
            continue
        for pattern, rule in RULES.items():
            if fnmatch.fnmatchcase(key, pattern) and (msg := rule(value)) is not None:
                raise ConfigError(key, msg if ", got " in msg else f"{msg}, got {_show(value)}")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _additions(combo: list[str], base: Any) -> set[str]:
    """Keys that `combo` sets without `+` although the composed config lacks them, where adding them is
    allowed (a `_target_`'s keyword argument such as `trainer.strategy`, or a key under an empty mapping)."""
    plain = _plain(base)
    have, containers = flatten(plain), _containers(plain)
    out = set()
    for o in combo:
        key = _key(o)
        if o[:1] in "+~" or "=" not in o or key in have or key in containers or _is_group(key.split("@", 1)[0]):
            continue
        if _allowed_addition(key, containers):
            out.add(key)
    return out


def check(verb: str, argv: Iterable[str]) -> list[str]:
    """Raise ConfigError for the first bad override of `unitrack VERB argv...` (nothing heavy imported);
    return `argv` with Hydra's `+` put before the keys a user may set but the config does not list (a
    Lightning user types `trainer.strategy=ddp`, not `+trainer.strategy=ddp`)."""
    argv = list(argv)
    overrides = _overrides_of(argv)
    if (overrides is None or any(a in _FLAGS_NO_CHECK for a in argv)
            or not (conf_dir() / f"{verb}.yaml").is_file()):
        return argv
    _plugin_hint(overrides)
    ours = [o for o in overrides if not _key(o).startswith("hydra")]
    added: set[str] = set()
    for combo in _expand(ours):
        groups = [o for o in combo if _is_group(_key(o).split("@", 1)[0])]
        base = _compose(verb, groups)
        if isinstance(base, ConfigError):
            raise base
        plus = _additions(combo, base)
        added |= plus
        combo = [f"+{o}" if _key(o) in plus and o[:1] not in "+~" else o for o in combo]
        full = base if groups == combo else _compose(verb, combo)
        if isinstance(full, ConfigError):
            key = full.key
            msg = str(full).split(": ", 1)[-1]
            if "not in struct" in msg or "Could not override" in msg or "Could not append" in msg:
                near = difflib.get_close_matches(key, list(flatten(_plain(base))), n=1, cutoff=0.6)
                raise ConfigError(key, "unknown key (not in the composed defaults)"
                                  + (f"; did you mean '{near[0]}'?" if near else "")) from None
            raise full
        check_config(full, base)
    own = set(overrides)
    return [f"+{a}" if a in own and a[:1] not in "+~" and "=" in a and _key(a) in added else a for a in argv]


def _plain(cfg: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=False)
