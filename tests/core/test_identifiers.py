"""The SQL twin of the credit code check (P4, GB 32100-2015): the ingest fast path checks an upload's distinct
codes with ``valid_credit_code_sql``, the full path words the problem with python-stdnum
(``credit_code_problem``). The twin must accept exactly the codes stored as written that stdnum accepts."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.core.identifiers import _USCC_ALPHABET, _USCC_WEIGHTS, credit_code_problem, valid_credit_code_sql
from stdnum.cn import uscc

# digits, the alphabet, the letters it leaves out, lower case, separators stdnum would strip, and others
CHARS = list(_USCC_ALPHABET) + list("IOSVZiosvzabjy -:_.P") + ["数", "\u00a0", "\t", "Ａ", "１"]


def python_verdict(code: str) -> bool:
    return code == code.strip().upper() and bool(code.strip()) and credit_code_problem(code) is None


def sql_verdicts(codes: list[str]) -> list[bool]:
    con = duckdb.connect()
    rows = con.execute(f"SELECT i, {valid_credit_code_sql('code')} FROM (SELECT unnest($codes) AS code, "
                       "generate_subscripts($codes, 1) AS i) ORDER BY i", dict(codes=codes)).fetchall()
    return [bool(valid) for _, valid in rows]


def with_check(body: str) -> str:
    return body + uscc.calc_check_digit(body + "0")


VALID_BODY = st.tuples(st.text(alphabet="0123456789", min_size=8, max_size=8),
                       st.text(alphabet=_USCC_ALPHABET, min_size=9, max_size=9)).map("".join)


@settings(max_examples=300, deadline=None)
@given(valid=st.lists(VALID_BODY.map(with_check), max_size=20),
       wrong_check=st.lists(VALID_BODY.map(lambda b: b + "Y" if with_check(b)[-1] != "Y" else b + "X"), max_size=10),
       other=st.lists(st.lists(st.sampled_from(CHARS), min_size=0, max_size=20).map("".join), max_size=20))
def test_the_sql_twin_gives_stdnums_verdict(valid, wrong_check, other) -> None:
    codes = valid + wrong_check + other
    if not codes:
        return
    verdicts = sql_verdicts(codes)
    assert verdicts == [python_verdict(c) for c in codes]
    assert all(verdicts[:len(valid)])
    assert not any(verdicts[len(valid):len(valid) + len(wrong_check)])


def sql_like_check(body: str) -> str:
    """The check character the twin's arithmetic gives for 17 characters, a character outside the alphabet
    counting -1 (instr gives 0): what a twin that forgot the format check would accept."""
    total = sum(_USCC_ALPHABET.find(c) * w for c, w in zip(body, _USCC_WEIGHTS))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def test_characters_outside_the_alphabet_are_refused_even_when_the_arithmetic_matches() -> None:
    bodies = ["9111000060003734" + bad for bad in "IOSVZa:"] + ["911100006000373" + bad + "1" for bad in "IOSVZ"]
    codes = [body + sql_like_check(body) for body in bodies]
    assert sql_verdicts(codes) == [False] * len(codes) == [python_verdict(c) for c in codes]


def test_known_codes() -> None:
    codes = ["91110000600037341L", "91330109944099116J", "91110000600037341l", " 91110000600037341L",
             "91110000600037341M", "A1110000600037341L", "9111000060003734IL", "9111-0000600037341L", "P:alice",
             "91110000600037341", "911100006000373410L", ""]
    assert sql_verdicts(codes) == [True, True, False, False, False, False, False, False, False, False, False, False]
    assert sql_verdicts(codes) == [python_verdict(c) for c in codes]
