"""Vectorised generation of valid unified social credit codes (统一社会信用代码, GB 32100-2015).

Owns: making many distinct, valid 18-character codes at once (numpy over a (n, 18) character matrix,
no Python loop over codes) for synthetic data (`settle generate`) and the sample exchange. Validation of
codes on *input* is not here: ingest uses python-stdnum (P4); the tests check every code made here
against ``stdnum.cn.uscc``. Must not import the CLI, the API, the store or anything that reads trades.

Layout of a code (GB 32100-2015):
  [0]     registration authority (9 = market regulation / industry and commerce)
  [1]     entity type (1 = enterprise)
  [2:8]   administrative division (330106 = Hangzhou, Xihu district ...)
  [8:17]  organisation code, GB 11714: 8 body characters + its own check character (0-9 or X)
  [17]    check character over the first 17 (weights 3^i mod 31, alphabet without I O Z S V)
"""

from __future__ import annotations

import numpy as np

# GB 32100-2015 code alphabet: digits and upper-case letters without I, O, Z, S, V (31 characters).
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Weight of position i is 3^i mod 31 (GB 32100-2015, 5.2).
WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
# GB 11714 organisation-code check: weights of the 8 body characters, modulus 11.
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)

# Districts of Hangzhou (the policy is a Hangzhou district policy): 上城 拱墅 西湖 滨江 萧山 余杭.
HANGZHOU_DIVISIONS = ("330102", "330105", "330106", "330108", "330109", "330110")

_ALPHABET_BYTES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
# Multiplier coprime with 10: serial -> organisation body is a bijection on [0, 10^8), so codes are distinct.
_ORG_MULTIPLIER = 48_271_013
_ORG_OFFSET = 10_357_911
MAX_SERIAL = 10**8


def check_character_indices(first17: np.ndarray) -> np.ndarray:
    """Alphabet index of the GB 32100 check character for each row of an (n, 17) matrix of alphabet indices."""
    total = first17.astype(np.int64) @ WEIGHTS
    return (31 - total % 31) % 31


def _org_check_digits(body_digits: np.ndarray) -> np.ndarray:
    """GB 11714 check character value per row of an (n, 8) digit matrix: 0-9, or 10 meaning 'X'."""
    c = 11 - (body_digits.astype(np.int64) @ ORG_WEIGHTS) % 11
    return np.where(c == 11, 0, c)  # 11 -> '0'; 10 stays 10 and is written 'X'


def credit_codes(
    serials: np.ndarray | list[int] | range,
    *,
    authority: str = "9",
    entity_type: str = "1",
    divisions: tuple[str, ...] = HANGZHOU_DIVISIONS,
) -> np.ndarray:
    """Valid credit codes for the given serial numbers (0 <= serial < 10^8), as a numpy '<U18' array.

    Deterministic: the same serial always gives the same code; distinct serials give distinct codes
    (the organisation code is a bijection of the serial). Everything is vectorised over the serials.
    """
    s = np.asarray(serials, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() >= MAX_SERIAL):
        raise ValueError(f"serials must lie in [0, {MAX_SERIAL})")
    if len(authority) != 1 or not authority.isdigit() or len(entity_type) != 1 or not entity_type.isdigit():
        raise ValueError("authority and entity_type are single digits (GB 32100-2015)")
    n = s.size
    idx = np.empty((n, 17), dtype=np.int64)  # alphabet indices; a digit's index is its value
    idx[:, 0] = int(authority)
    idx[:, 1] = int(entity_type)
    division_digits = np.array([[int(ch) for ch in d] for d in divisions], dtype=np.int64)
    idx[:, 2:8] = division_digits[s % len(divisions)]
    body = (s * _ORG_MULTIPLIER + _ORG_OFFSET) % MAX_SERIAL
    powers = 10 ** np.arange(7, -1, -1, dtype=np.int64)
    idx[:, 8:16] = (body[:, None] // powers) % 10
    org_check = _org_check_digits(idx[:, 8:16])
    # 'X' sits at alphabet index 29; digits map to themselves.
    idx[:, 16] = np.where(org_check == 10, ALPHABET.index("X"), org_check)
    full = np.empty((n, 18), dtype=np.uint8)
    full[:, :17] = _ALPHABET_BYTES[idx]
    full[:, 17] = _ALPHABET_BYTES[check_character_indices(idx)]
    return full.view("S18").ravel().astype("U18")


def credit_code(serial: int, **kwargs) -> str:
    """One code (convenience for small fixtures)."""
    return str(credit_codes([serial], **kwargs)[0])
