"""One formatter for every Pydantic validation error a client or operator reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from gateway.validation import MAX_REPORTED, describe_errors, describe_location


class Item(BaseModel):
    name: str
    shape: list[int]


class Envelope(BaseModel):
    inputs: list[Item]


def test_locations_read_as_paths_with_indexes_in_brackets() -> None:
    assert describe_location(("inputs", 0, "shape", 1)) == "inputs[0].shape[1]"
    assert describe_location(()) == ""


def test_a_name_hook_labels_list_items() -> None:
    def name_at(loc: tuple[int | str, ...]) -> str | None:
        return "pixels" if loc == ("inputs", 0) else None

    assert describe_location(("inputs", 0, "shape"), name_at) == "inputs[0] (pixels).shape"


def test_real_pydantic_errors_name_where_and_what() -> None:
    try:
        Envelope.model_validate({"inputs": [{"name": 3, "shape": ["a"]}]})
    except ValidationError as exc:
        text = describe_errors(exc.errors())
    assert text.startswith("inputs[0].name: Input should be a valid string")
    assert "inputs[0].shape[0]: Input should be a valid integer" in text


def test_an_error_without_a_location_gets_the_given_name() -> None:
    assert describe_errors([{"loc": (), "msg": "bad"}], empty="(top level)") == "(top level): bad"


@given(st.lists(st.text(max_size=20), max_size=20))
def test_at_most_max_reported_errors_are_listed(messages: list[str]) -> None:
    errors = [{"loc": ("field", n), "msg": message} for n, message in enumerate(messages)]
    text = describe_errors(errors)
    assert text.count("field[") == min(len(messages), MAX_REPORTED)
