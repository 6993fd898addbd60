"""Formats the registry checks beyond their patterns, taught to schemathesis's generator.

`/openapi.json` marks them with a `format` of their own (and the pattern of their shape):
a SNILS carries a check number, an academic year two consecutive years. Generated values of
these formats are valid, so a refusal of one is a defect the run reports.
"""

import schemathesis
from hypothesis import strategies as st


def snils(number: int) -> str:
    """NNN-NNN-NNN CC with the check number of crates/domain/src/snils.rs."""
    digits = f"{number:09d}"
    total = sum(int(d) * weight for d, weight in zip(digits, range(9, 0, -1)))
    check = (total % 101) % 100
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]} {check:02d}"


# Numbers up to 001-001-998 carry no check number: generate only those that do.
schemathesis.openapi.format(
    "snils", st.integers(min_value=1_001_999, max_value=999_999_999).map(snils)
)
# AcademicYear::parse: the first year from 1900 to 2200, the second the next one.
schemathesis.openapi.format(
    "academic-year", st.integers(min_value=1900, max_value=2200).map(lambda y: f"{y}/{y + 1}")
)
