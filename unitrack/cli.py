"""`unitrack VERB [hydra overrides]`: each verb is a Hydra app composed from conf/VERB.yaml.

The entry point stays thin: it picks the verb, hands the remaining arguments to Hydra and turns our
own input errors into one clear line (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import importlib
import logging
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
}

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
log = logging.getLogger("unitrack")


def _usage() -> str:
    width = max(map(len, VERBS))
    lines = ["usage: unitrack VERB [hydra overrides...]   (unitrack VERB --help for a verb's config)", "",
             "verbs:"]
    lines += [f"  {v:<{width}}  {d}" for v, d in VERBS.items()]
    return "\n".join(lines)


def _summary(out) -> str | None:
    """One line of a verb's result for the log file (Rich tables go to the console only)."""
    if not isinstance(out, dict):
        return None
    if "final_pooled_SR" in out:
        return (f"result: stage x task SR {out.get('SR')} PR {out.get('PR')}; final pooled SR "
                f"{out['final_pooled_SR']:.4f} PR {out.get('final_pooled_PR', float('nan')):.4f}")
    if isinstance(out.get("overall"), dict):
        o = out["overall"]
        per = {t: round(v.get("SR", float("nan")), 4) for t, v in (out.get("per_task") or {}).items()}
        return (f"result: overall SR {o.get('SR', float('nan')):.4f} PR {o.get('PR', float('nan')):.4f} "
                f"({out.get('protocol')} protocol); per task SR {per}")
    return None


def _guarded(fn):
    """Run a verb; our own input errors become one line on stderr and exit code 2."""
    from unitrack.errors import UnitrackError

    def task(cfg):
        try:
            out = fn(cfg)
            if (line := _summary(out)) is not None:
                log.info("%s", line)  # the job's log file holds the console's result, not only warnings
            return out
        except Exception as e:  # ours, also when raised inside hydra.utils.instantiate (wrapped by Hydra)
            ours = e
            while ours is not None and not isinstance(ours, UnitrackError):
                ours = ours.__cause__ or ours.__context__
            if ours is None:
                raise
            log.error("%s", ours)
            print(f"error: {ours}", file=sys.stderr)
            sys.exit(2)

    task.__name__ = fn.__name__
    task.__module__ = fn.__module__
    return task


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    verb, rest = argv[0], argv[1:]
    if verb == "inspect":  # `inspect --deep` reads better than the Hydra key it stands for
        rest = ["deep=true" if a == "--deep" else a for a in rest]
    if verb not in VERBS:
        print(f"error: unknown verb '{verb}'. Valid verbs: {', '.join(VERBS)}\n\n{_usage()}", file=sys.stderr)
        sys.exit(2)
    if not (CONF_DIR / f"{verb}.yaml").is_file():
        print(f"error: config {CONF_DIR / (verb + '.yaml')} not found (install unitrack editable: "
              "pip install -e .)", file=sys.stderr)
        sys.exit(2)
    from unitrack.errors import ConfigError
    from unitrack.schema import check

    try:  # the schema (types, ranges, unknown keys) before torch: a bad key costs < 1 s, not 11 s
        check(verb, rest)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import hydra

    from unitrack.runtime import tune_allocator

    tune_allocator()
    module = importlib.import_module(f"unitrack.commands.{verb}")
    app = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=verb)(_guarded(module.run))
    sys.argv = [f"unitrack-{verb}", *rest]
    app()


if __name__ == "__main__":
    main()
