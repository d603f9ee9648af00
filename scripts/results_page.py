"""Regenerate docs/results.md's tables from the committed study records.

For every preset with records (`docs/results/<preset>/runs/`), run `unitrack report` on them into
`docs/results/<preset>/` and put that report.md into docs/results.md between the markers
`<!-- report:begin -->` and `<!-- report:end -->` (headings one level down, links into the preset's
folder). Text outside the markers (what the study is, how far it got, what explains a miss) is kept.

    python scripts/results_page.py [--presets paper_table capacity_sweep order_sweep]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("docs/results")
PAGE = Path("docs/results.md")
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def preset_section(preset: str) -> str:
    """`unitrack report` over one preset's records, as a section of the results page."""
    runs, out = RESULTS / preset / "runs", RESULTS / preset
    subprocess.run([sys.executable, "-m", "unitrack", "report", f"runs={runs.as_posix()}",
                    f"hydra.run.dir={out.as_posix()}", "hydra.output_subdir=null", "hydra/job_logging=disabled"],
                   cwd=ROOT, check=True)
    text = (ROOT / out / "report.md").read_text()
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)  # one level down
    text = text.replace("# unitrack report", f"# Preset `{preset}`", 1)
    return re.sub(r"\]\((?!https?:|#|/)([^)]+)\)", lambda m: f"](results/{preset}/{m.group(1)})", text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=None, help="default: every docs/results/<preset>/runs")
    args = ap.parse_args(argv)
    presets = args.presets or sorted(p.parent.name for p in (ROOT / RESULTS).glob("*/runs") if any(p.iterdir()))
    body = "\n".join(preset_section(p) for p in presets)
    page = (ROOT / PAGE).read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{PAGE}: the markers {BEGIN} and {END} are missing")
    head, rest = page.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    (ROOT / PAGE).write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    print(f"{PAGE}: {', '.join(presets)}")


if __name__ == "__main__":
    main()
