"""One Hydra app per verb: `unitrack-train`, `unitrack-eval`, ... (console scripts) and `python -m
unitrack.apps.VERB`.

Each app module is a few lines that call `hydra_app(VERB)`: this module imports only Hydra, so `--help`,
`--cfg job`, `--info` and shell completion answer without torch; the verb's code
(`unitrack.commands.VERB.run`) is imported inside the Hydra task. Because every verb is a real program,
Lightning's DDP subprocess launcher, which re-runs `sys.argv[0]` (or `python -m <module>`) with the same
arguments, starts the same verb in its children.

Errors. Before Hydra composes, `unitrack.schema` checks the overrides (unknown keys, types, ranges) and a bad
one ends the program with one line and exit code 2. Inside the task our own errors (`UnitrackError`) are one
line too: exit code 2 for a single run. In a multirun a failed job -- ours or any exception -- is recorded
in its job folder (`failed.json`, with the traceback in the job's log file), Hydra records it as failed, the
next jobs run, and the sweep ends with a list of the failed jobs and exit code 1.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import CompactHydraException

from unitrack import CONFIG_MODULE

log = logging.getLogger("unitrack")

#: A multirun job's failure record, in its job folder (read by `unitrack report`).
FAILED_FILE = "failed.json"
#: Failures of this process's multirun jobs: (job folder, overrides, one-line reason).
FAILED: list[dict[str, Any]] = []


class JobFailed(CompactHydraException):
    """A multirun job failed; Hydra records it and prints this one line instead of a traceback."""


def _summary(out: Any) -> str | None:
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


def _ours(e: BaseException):
    """Our own input error in `e`'s chain (also when Hydra's `instantiate` wrapped it), else None."""
    from unitrack.errors import UnitrackError

    while e is not None and not isinstance(e, UnitrackError):
        e = e.__cause__ or e.__context__
    return e


def _one_line(e: BaseException) -> str:
    ours = _ours(e)
    text = str(ours) if ours is not None else f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def _record_failure(job_dir: Path, reason: str, overrides: list[str]) -> None:
    from unitrack.atomic import write_text_atomic

    rec = {"reason": reason, "overrides": overrides}
    FAILED.append({"dir": str(job_dir), **rec})
    try:
        write_text_atomic(job_dir / FAILED_FILE, json.dumps(rec, indent=2))
    except OSError as e:  # the record is a convenience; the sweep's summary still names the job
        log.warning("could not write %s: %s", job_dir / FAILED_FILE, e)


def _task(verb: str) -> Callable[[Any], Any]:
    def task(cfg):
        import importlib

        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        job_dir = Path(hc.runtime.output_dir)
        (job_dir / FAILED_FILE).unlink(missing_ok=True)  # a job run again starts without its old failure
        try:
            from unitrack.runtime import tune_allocator

            tune_allocator()
            out = importlib.import_module(f"unitrack.commands.{verb}").run(cfg)
            if (line := _summary(out)) is not None:
                log.info("%s", line)  # the job's log file holds the console's result, not only warnings
            return out
        except Exception as e:
            reason = _one_line(e)
            if multirun:
                if _ours(e) is None:  # a bug, not bad input: the traceback goes to the job's log file
                    log.error("job %s failed:\n%s", hc.job.num, traceback.format_exc())
                else:
                    log.error("%s", reason)
                _record_failure(job_dir, reason, list(hc.overrides.task))
                raise JobFailed(f"job {hc.job.num} ({','.join(hc.overrides.task)}) failed: {reason}") from None
            if _ours(e) is None:
                raise
            log.error("%s", reason)
            print(f"error: {reason}", file=sys.stderr)
            sys.exit(2)

    task.__module__ = f"unitrack.apps.{verb}"  # Hydra's default job name (each verb's config sets its own)
    return task


def _print_failures() -> None:
    print(f"\n{len(FAILED)} job(s) of this multirun failed:", file=sys.stderr)
    for f in FAILED:
        print(f"  {f['dir']} [{','.join(f['overrides'])}]: {f['reason']}", file=sys.stderr)


def hydra_app(verb: str) -> Callable[[], None]:
    """The console script of `verb`: schema check, then Hydra with `pkg://unitrack.conf` and `verb.yaml`."""
    import hydra

    app = hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=verb)(_task(verb))

    def main() -> None:
        from unitrack.errors import ConfigError
        from unitrack.schema import check

        args = sys.argv[1:]
        if verb == "inspect":  # `inspect --deep` reads better than the Hydra key it stands for
            args = ["deep=true" if a == "--deep" else a for a in args]
        try:  # types, ranges and unknown keys before torch: a bad key costs < 1 s, not 11 s
            args = check(verb, args)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        # the same command line, Trainer arguments that the config does not list given Hydra's `+`; DDP
        # children re-run sys.argv and get the same
        sys.argv[1:] = args
        FAILED.clear()
        try:
            app()
        except SystemExit:
            if FAILED:
                _print_failures()
            raise
        if FAILED:  # a launcher that returns failed jobs without raising
            _print_failures()
            sys.exit(1)

    main.__doc__ = f"`unitrack-{verb}`: the `{verb}` verb's Hydra app."
    return main

