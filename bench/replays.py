"""Finished runs, replayed by the script that trained them: what bench/cost_table.py and
bench/mean_action.py share.

A run's last.pt read as the scripts read it (a file that is no checkpoint is a one-line error), one
`--eval-only CHECKPOINT --report` of it in a subprocess. Both tools also check that a group of runs
holds each seed once, with compare.py's `one_run_per_seed`, as compare.py itself does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import compare  # noqa: E402
from machinery.checkpoints import CheckpointError, read_checkpoint  # noqa: E402
from machinery.cli import UsageError  # noqa: E402


def last_checkpoint(run_dir: Path) -> dict:
    """The run's last.pt, the policy it ended with; a UsageError for what is not one of the scripts' runs."""
    agent = compare.agent_of(run_dir)
    if agent is None:
        raise UsageError(f"{run_dir}: not a run directory of the scripts' (<env-id>__<script>__<seed>__<time>)")
    try:
        return read_checkpoint(run_dir / "last.pt", agent)
    except CheckpointError as e:
        raise UsageError(str(e)) from None


def report(checkpoint: Path, agent: str, *flags: str) -> dict:
    """The --report of the checkpoint replayed with `flags` by the script of `agent`, which trained it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.json"
        script = ROOT / f"{compare.AGENTS[agent]}.py"
        command = [sys.executable, str(script), "--eval-only", str(checkpoint), *flags, "--report", str(path)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:  # the script's error line, or a traceback's last line
            why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise UsageError(f"{checkpoint}: the replay failed: {why}")
        return json.loads(path.read_text())
