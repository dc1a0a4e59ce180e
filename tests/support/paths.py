"""Where the repository's checked-in files are, for tests at any depth under tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODELS = ROOT / "models"
SCHEMAS = ROOT / "schemas"
TESTS = ROOT / "tests"  # on sys.path in a child Python run from here: `import support` works
