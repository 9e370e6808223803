"""Running an experiment script the way a user does, in quick mode.

``run_quick(name)`` runs ``python experiments/NAME.py --quick --out TMP`` in a
subprocess (the tests import no experiment code), checks that it wrote its
JSON and a small PNG, and returns the JSON: the test then asserts the
experiment's headline claim on it. Quick runs are small and the machine may be
loaded, so assertions are robust (no tight timing or accuracy thresholds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


@pytest.fixture
def run_quick(tmp_path):
    def run(name: str) -> dict:
        command = [sys.executable, str(EXPERIMENTS / f"{name}.py"), "--quick"]
        done = subprocess.run(
            [*command, "--out", str(tmp_path)],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        written = json.loads((tmp_path / f"{name}.json").read_text())
        assert written["experiment"] == name
        assert written["quick"] is True
        png = tmp_path / f"{name}.png"
        assert png.is_file()
        assert 0 < png.stat().st_size < 150_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return written

    return run
