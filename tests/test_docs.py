"""The docs check themselves: the site builds in strict mode (a broken link, anchor or nav entry fails), every
`unitrack` command shown in a code block of the README and the docs is a valid config by the schema (checked,
never run), and no repository text names a development machine's paths or keeps a measurement diary."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from unitrack import schema
from unitrack.cli import VERBS
from unitrack.errors import ConfigError
from unitrack.schema import check

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
#: Hydra plugins of the `cluster` extra, by the override that needs them (dropped from a command when absent:
#: the schema would only say "install the cluster extra").
PLUGIN_OVERRIDES = {"hydra/launcher": "hydra_plugins.hydra_submitit_launcher",
                    "hydra/sweeper": "hydra_plugins.hydra_optuna_sweeper",
                    "hparams_search=optuna": "hydra_plugins.hydra_optuna_sweeper"}
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
_SHELLS = {"", "bash", "sh", "shell", "console", "zsh"}
_SEPARATORS = {";", "&&", "||", "|"}
_COMPOSED: dict = {}


@pytest.fixture(autouse=True)
def _compose_once(monkeypatch):
    """Hydra composes each distinct (verb, overrides) once per test session: the commands of the README and
    the docs share most of their config-group choices, and a compose costs ~0.1-0.3 s. The schema only
    reads what it gets, so sharing the composed object is safe."""
    real = schema._compose

    def cached(verb: str, overrides: list[str]):
        key = (verb, tuple(overrides))
        if key not in _COMPOSED:
            _COMPOSED[key] = real(verb, overrides)
        return _COMPOSED[key]

    monkeypatch.setattr(schema, "_compose", cached)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, logical line) of every shell code block line, backslash continuations joined."""
    out, lang, cont, start = [], None, "", 0
    for n, line in enumerate(text.splitlines(), start=1):
        fence = _FENCE.match(line)
        if fence:
            lang = fence.group(2).lower() if lang is None else None
            continue
        if lang is None or lang not in _SHELLS:
            continue
        if not cont:
            start = n
        cont += line.rstrip()
        if cont.endswith("\\"):
            cont = cont[:-1] + " "
            continue
        out.append((start, cont.strip()))
        cont = ""
    return out


def unitrack_commands(text: str) -> list[tuple[int, str, list[str]]]:
    """(line, verb, arguments) of each `unitrack VERB ...`, `unitrack-VERB ...`, `python -m unitrack VERB ...`
    or `torchrun ... -m unitrack.cli VERB ...` in the shell code blocks of `text`."""
    found = []
    for n, line in shell_blocks(text):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as e:
            raise AssertionError(f"line {n}: cannot split {line!r} as a shell line: {e}") from None
        for i, tok in enumerate(tokens):
            name = tok.rsplit("/", 1)[-1]
            if name == "unitrack" or (tok in ("unitrack", "unitrack.cli") and i and tokens[i - 1] == "-m"):
                verb, rest = (tokens[i + 1], tokens[i + 2:]) if i + 1 < len(tokens) else (None, [])
            elif name.startswith("unitrack-") and name[len("unitrack-"):] in VERBS:
                verb, rest = name[len("unitrack-"):], tokens[i + 1:]
            else:
                continue
            if verb is None or verb.startswith("-"):  # `unitrack --help`: the dispatcher's own usage
                break
            cut = next((j for j, t in enumerate(rest) if t in _SEPARATORS), len(rest))
            found.append((n, verb, rest[:cut]))
            break
    return found


def check_command(verb: str, args: list[str]) -> list[str]:
    """The schema's verdict on one command, as the program would run it (nothing heavy is imported)."""
    assert verb in VERBS, f"unknown verb {verb!r}"
    if verb == "inspect":  # the inspect app reads --deep as deep=true
        args = ["deep=true" if a == "--deep" else a for a in args]
    missing = [o for o, module in PLUGIN_OVERRIDES.items() if not _installed(module)]
    args = [a for a in args if not any(a == o or a.split("=", 1)[0] == o for o in missing)]
    return check(verb, args)


def _check_all(path: Path) -> tuple[int, list[str]]:
    commands = unitrack_commands(path.read_text(encoding="utf-8"))
    bad = []
    for n, verb, args in commands:
        try:
            check_command(verb, args)
        except (ConfigError, AssertionError) as e:
            bad.append(f"{path.relative_to(ROOT)}:{n}: unitrack {verb} {' '.join(args)}\n    -> {e}")
    return len(commands), bad


def test_readme_commands_are_valid_configs():
    """Every command the README shows composes and passes the schema: the tour's four verbs at least."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    verbs = {verb for _, verb, _ in unitrack_commands(text)}
    assert {"train", "eval", "score", "report", "inspect"} <= verbs, verbs
    assert "make demo" in text and "make test" in text
    count, bad = _check_all(ROOT / "README.md")
    assert count >= 8
    assert not bad, "\n".join(bad)


def test_docs_commands_are_valid_configs():
    count, bad = 0, []
    for page in DOCS:
        c, b = _check_all(page)
        count, bad = count + c, bad + b
    assert count >= 40
    assert not bad, "\n".join(bad)


def test_a_bad_command_in_a_code_block_is_found():
    """The extraction sees what a reader copies: continuations, comments, torchrun prefixes, console scripts."""
    text = ("```bash\nunitrack train +experiment=serial_replay \\\n    train.step_per_stage=3   # a typo\n"
            "torchrun --nproc_per_node 2 -m unitrack.cli eval ckpt=x.ckpt protocol=lasot\n"
            "unitrack-score results=r\nmake demo\n```\n```python\nunitrack = 1\n```\n")
    cmds = unitrack_commands(text)
    assert [(n, v) for n, v, _ in cmds] == [(2, "train"), (4, "eval"), (5, "score")]
    with pytest.raises(ConfigError, match="train.steps_per_stage"):
        check_command(*cmds[0][1:])
    with pytest.raises(ConfigError, match="protocol"):
        check_command(*cmds[1][1:])
    check_command(*cmds[2][1:])


#: What no repository text may hold: absolute paths of a development machine, dated measurement diaries.
_MACHINE = re.compile("|".join(re.escape(f"/{d}/") for d in ("work", "root", "home", "tmp")))
_DIARY = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b|load average", re.IGNORECASE)
_TEXT = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".sh", ".cfg", ".json", ".csv", ".ini"}


def _texts() -> list[Path]:
    files = [ROOT / n for n in ("README.md", "CHANGELOG.md", "mkdocs.yml", "pyproject.toml", "Makefile")]
    for folder in ("docs", "unitrack", "tests", "conf", "scripts"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in _TEXT
                  and "__pycache__" not in p.parts]
    return [p for p in files if p.is_file() and p.resolve() != Path(__file__).resolve()]


def test_no_machine_paths_or_diary_in_the_repository():
    hits = []
    for path in _texts():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            for rx in (_MACHINE, _DIARY):
                if m := rx.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)!r} in {line.strip()[:120]!r}")
    assert not hits, "\n".join(hits)


def test_docs_build_in_strict_mode(tmp_path):
    """`mkdocs build --strict`: a page missing from the nav, a broken link or a broken anchor fails."""
    if not (_installed("mkdocs") and _installed("material")):
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[dev]')")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    for page in ["index.html", *(f"{p.stem}/index.html" for p in DOCS if p.stem != "index")]:
        assert (tmp_path / "site" / page).is_file(), page
