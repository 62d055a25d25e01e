"""The layering of slmgate-core holds: no import circles between files and no import running
up the layers (scripts/layers.py, which lists the layers)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_circles_or_upward_imports():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "layers.py")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("0 problem(s)"), out.stdout
