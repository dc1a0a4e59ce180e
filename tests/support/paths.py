"""Where the repository's checked-in files are, for tests at any depth under tests/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODELS = ROOT / "models"
SCHEMAS = ROOT / "schemas"
TENSORGATE = Path(sys.executable).with_name("tensorgate")
"""The console script of the environment running the tests."""
TESTS = ROOT / "tests"  # on sys.path in a child Python run from here: `import support` works
