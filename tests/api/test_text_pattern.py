"""``api.models.SAYS_SOMETHING``: a text the schema accepts (a review comment, a rejection reason, a party id)
is one the core accepts too. The core asks ``text.strip()`` to leave something; Python strips the separators
\\x1c-\\x1f that neither the schema's ``\\s`` nor pydantic's counts as space, so ``\\S`` let a comment of one
\\x1e through the schema and the core refused it (schemathesis, CI of 2026-12-01)."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from api.models import SAYS_SOMETHING

ADAPTER = TypeAdapter(Annotated[str, Field(pattern=SAYS_SOMETHING)])  # pydantic: Rust regex, Unicode \s
PYTHON_SPACE = [chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace()]


def test_python_whitespace_is_the_set_the_pattern_excludes() -> None:
    assert len(PYTHON_SPACE) == 29  # \t-\r, \x1c-\x1f, space, \x85, \xa0, \u1680, \u2000-\u200a, 2028, 2029, ...
    for char in PYTHON_SPACE:
        text = char * 3
        assert text.strip() == ""
        with pytest.raises(ValidationError):
            ADAPTER.validate_python(text)
        assert re.search(SAYS_SOMETHING, text) is None  # schemathesis generates with Python's re


@pytest.mark.parametrize("text", ["x", "\x1e因为重复下单\x1e", " staged buyer ", "\ufeffok"])
def test_a_text_with_something_in_it_passes(text: str) -> None:
    assert ADAPTER.validate_python(text) == text
    assert text.strip()


def test_a_comment_of_one_separator_is_refused_by_the_schema(api) -> None:
    answer = api.client.post("/v1/flags/1/review", json={"outcome": "confirmed", "comment": "\x1e"},
                             headers=api.auth(api.regulator))
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == [{
        "loc": ["body", "comment"], "message": "String should match pattern '[^\\s\\x1c-\\x1f\\x85]'",
        "type": "string_pattern_mismatch"}]
