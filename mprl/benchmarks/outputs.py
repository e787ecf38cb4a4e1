"""What every pipeline bench leaves behind: STEM.json (all figures), STEM.md (the report), STEM.png."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_outputs(out_dir: Path, stem: str, out: dict[str, Any], text: str, plot: Callable[[Path], None], as_json: bool, tail: str = "") -> None:
    """Write the three files, then print the JSON object (`--json`) or the report and where the files are."""
    (out_dir / f"{stem}.json").write_text(json.dumps(out, indent=2, default=str))
    (out_dir / f"{stem}.md").write_text(text + "\n")
    plot(out_dir / f"{stem}.png")
    print(json.dumps(out, default=str) if as_json else f"{text}\n\nwall-clock {out['wall_s'] / 60:.1f} min; {out_dir}/{stem}.{{md,json,png}}{tail}")
