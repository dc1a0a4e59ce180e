"""The docs harness itself: which blocks run, which output is compared and how."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docs.blocks import examples
from docs.outputs import matches
from docs.runner import Session

PAGE = """\
# Page

```sh
echo one
```

```json
{"a": 1}
```

```sh
echo two
```

Prose between: the next block is a body, not an output.

```json
{"b": 2}
```

*Not run by the docs tests: needs Docker.*

```bash
docker compose up
```

```yaml
key: value
```

```python
print("three")
```
```text
three
```
"""


def test_runnable_blocks_their_outputs_and_markers_are_read() -> None:
    found = examples(Path("page.md"), PAGE)
    assert [(example.block.language, example.block.line) for example in found] == [
        ("sh", 3),
        ("sh", 11),
        ("bash", 23),
        ("python", 31),
    ]
    assert [example.expected.source if example.expected else None for example in found] == [
        '{"a": 1}\n',
        None,
        None,
        "three\n",
    ]
    assert [example.not_run for example in found] == [None, None, "needs Docker", None]


@pytest.mark.parametrize(
    ("shown", "printed"),
    [
        ('{"ready": true}', '{"ready":true}\n'),
        ('{\n  "a": 1,\n  "b": [1, 2]\n}', '{"b":[1,2],"a":1}'),
        ('{"model_name": "digits", ...}', '{"model_name":"digits","outputs":[]}'),
        ("score 0.999184", "score 0.999191"),
        ('"time": "2026-01-01T00:00:00.000Z"', '"time": "2026-12-07T03:41:19.216Z"'),
        ("id 8151c41600000048 done", "id 9cf8bd9200000003 done"),
        ("line one\nline two", "line one\n   line two  \n"),
    ],
)
def test_what_a_page_shows_matches_what_was_printed(shown: str, printed: str) -> None:
    assert matches(shown, printed)


@pytest.mark.parametrize(
    ("shown", "printed"),
    [
        ('{"data": [3]}', '{"data": [5]}'),
        ('{"a": 1}', '{"a": 1, "b": 2}'),
        ("score 0.9992", "score 0.9981"),
        ("0.999184:3", "0.999184:5"),
        ("ready", "not ready"),
        ('{"model_name": "digits", ...}', '{"model_name":"mlp"}'),
    ],
)
def test_a_difference_that_matters_is_caught(shown: str, printed: str) -> None:
    assert not matches(shown, printed)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80))
def test_any_text_matches_itself(text: str) -> None:
    assert matches(text, text)


def test_a_page_session_carries_variables_and_directory_and_uses_the_live_address(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    harness = tmp_path / "harness"
    harness.mkdir()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    session = Session(tmp_path, "127.0.0.1:1234", "127.0.0.1:1235", {"PATH": "/usr/bin:/bin"})
    try:
        first = session.run("sh", "NAME=alice\nexport SHARED=bob\ncd sub\n", harness)
        second = session.run("sh", 'echo "$NAME $(basename "$PWD") http://127.0.0.1:8000"', harness)
        child = session.run("sh", "sh -c 'echo \"[$NAME] [$SHARED]\"'", harness)
        python = session.run("python", 'import os; print(os.environ.get("NAME"))', harness)
        failed = session.run("sh", "false\necho after", harness)
    finally:
        session.close()
    assert first.returncode == 0
    assert second.stdout == "alice sub http://127.0.0.1:1234\n"
    # As in a terminal: a variable that was not exported is the shell's, not its children's.
    assert child.stdout == "[] [bob]\n"
    assert python.stdout == "None\n"
    assert failed.returncode != 0
    assert "after" not in failed.stdout


def test_the_documented_http_and_grpc_addresses_become_the_live_ones(tmp_path: Path) -> None:
    session = Session(tmp_path, "127.0.0.1:1234", "127.0.0.1:1235")
    source = (
        "curl http://127.0.0.1:8000/v2 localhost:8000\n"
        'InferenceServerClient("127.0.0.1:8001"); grpcurl localhost:8001 list\n'
    )
    assert session.localise(source) == (
        "curl http://127.0.0.1:1234/v2 127.0.0.1:1234\n"
        'InferenceServerClient("127.0.0.1:1235"); grpcurl 127.0.0.1:1235 list\n'
    )
