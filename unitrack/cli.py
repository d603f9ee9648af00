"""`unitrack VERB [hydra overrides]`: a thin dispatcher that runs the verb's own program.

Every verb is its own Hydra app (`unitrack.apps.VERB`, installed as the console script `unitrack-VERB`).
The dispatcher runs that program as if it had been started itself -- with `sys.argv[0]` naming the
`unitrack-VERB` script next to this one, or, without it (`python -m unitrack VERB` from a checkout), as
`python -m unitrack.apps.VERB` -- so a process that re-runs the command line (Lightning's DDP launcher,
Hydra's shell completion) starts the same verb.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

#: verb -> one-line description (shown by `unitrack --help`).
VERBS: dict[str, str] = {
    "train": "train the tracker: single task, serial (continual) or parallel unification",
    "eval": "track a benchmark with a checkpoint in one pass, then score it (track + score)",
    "score": "score existing result files of any tracker against a benchmark's ground truth",
    "track": "track one video or frame folder from an initial box; writes an annotated video",
    "bench": "measure model, data-loader and evaluation speed and memory; writes bench.json",
    "synth": "generate the synthetic RGBT/RGBD/RGBE datasets (native layouts + unified manifest)",
    "inspect": "read and validate a dataset in its native layout; writes inspect.json",
    "report": "aggregate runs or multiruns into report.md, CSV tables and plots",
    "export": "write a checkpoint as a shareable folder: model.safetensors + config.yaml (no pickle)",
}


def _usage() -> str:
    width = max(map(len, VERBS))
    lines = ["usage: unitrack VERB [hydra overrides...]   (unitrack VERB --help for a verb's config; each verb",
             "       is also its own program: unitrack-VERB, python -m unitrack.apps.VERB)", "", "verbs:"]
    lines += [f"  {v:<{width}}  {d}" for v, d in VERBS.items()]
    return "\n".join(lines)


def verb_script(verb: str, argv0: str) -> Path | None:
    """The `unitrack-VERB` console script installed beside the running `unitrack` script, if any."""
    here = Path(argv0)
    if here.name != "unitrack" and here.stem != "unitrack":
        return None
    script = here.with_name(f"unitrack-{verb}{here.suffix}")
    return script if script.is_file() and os.access(script, os.X_OK) else None


def main(argv: list[str] | None = None) -> None:
    """`unitrack VERB [overrides]`: run the verb's own program (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"error: unknown verb '{verb}'. Valid verbs: {', '.join(VERBS)}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    script = verb_script(verb, sys.argv[0])
    saved = sys.argv
    try:
        if script is not None:  # the installed program: argv[0] is what a child process or completion re-runs
            from importlib import import_module

            sys.argv = [str(script), *rest]
            import_module(f"unitrack.apps.{verb}").main()
        else:  # runpy puts the module's file in argv[0] and makes the app __main__ (`python -m` children)
            sys.argv = [saved[0], *rest]
            runpy.run_module(f"unitrack.apps.{verb}", run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
