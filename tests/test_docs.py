"""The docs cannot drift: the format tables are regenerated from the
registry and the worked examples are recomputed."""
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import lowprec as lp
from lowprec.__main__ import format_table, formats_doc
from lowprec.reference import ref_encode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as fh:
        return fh.read()


def test_formats_doc_is_current():
    assert _read("docs", "formats.md") == formats_doc(), \
        "docs/formats.md is stale: python -m lowprec formats > docs/formats.md"


def test_readme_format_table_is_current():
    text = _read("README.md")
    table = text.split("<!-- formats -->\n")[1].split("<!-- /formats -->")[0]
    assert table == format_table(), "README format table is stale"


def _examples():
    text = _read("docs", "rounding.md")
    block = text.split("<!-- examples -->")[1].split("<!-- /examples -->")[0]
    rows = [r for r in block.strip().split("\n")[2:] if r.startswith("|")]
    out = []
    for r in rows:
        x, fmt, mode, code, value = [c.strip() for c in r.split("|")[1:6]]
        out.append((x, fmt, mode, int(code, 16), value))
    return out


EXAMPLES = _examples()


def test_examples_found():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("x, fmt, mode, code, value", EXAMPLES)
def test_rounding_examples(x, fmt, mode, code, value):
    f = lp.get_format(fmt)
    got = int(lp.encode(np.array([float(x)]), f, rounding=mode)[0])
    mask = (1 << (8 * f.code_dtype.itemsize)) - 1
    assert got & mask == code
    assert ref_encode(f, float(x), rounding=mode) & mask == code
    v = float(lp.decode(np.array([got], f.code_dtype), f,
                        dtype=np.float64)[0])
    if value == "nan":
        assert math.isnan(v)
    else:
        assert v == float(value)


@given(st.floats(-500, 500, allow_nan=False),
       st.sampled_from(["float8_e4m3fn", "float8_e5m2", "float8_e3m4",
                        "bfloat16", "float4_e2m1fn"]))
def test_to_odd_cures_double_rounding(x, name):
    """Quirks section: round to odd with two more mantissa bits, then to
    nearest-even, equals rounding to nearest-even directly."""
    f = lp.get_format(name)
    wide = lp.FloatFormat(f.ebits, f.mbits + 2, bias=f.bias, infs=False,
                          nans="none")      # range covers f's
    mid = lp.quantize(np.array([x]), wide, rounding="to_odd")
    direct = lp.encode(np.array([x]), f, saturate=True)
    twice = lp.encode(mid, f, saturate=True)
    assert twice[0] == direct[0]


def test_readme_examples_run():
    """The README's Python examples run in order in one namespace; a block
    that needs an optional package (torch, dask) runs where it is
    installed."""
    import importlib.util
    text = _read("README.md")
    ns = {}
    for code in [b.split("```")[0] for b in text.split("```python\n")[1:]]:
        needs = [m for m in ("torch", "dask") if f"import {m}" in code
                 or f"import ml_dtypes, {m}" in code]
        if any(importlib.util.find_spec(m) is None for m in needs):
            continue
        exec(compile(code, "README.md", "exec"), ns)
