"""The docs tests: every runnable block of README.md and docs/ runs (README.md here)."""
