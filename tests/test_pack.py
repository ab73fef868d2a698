"""Sub-byte packing: literal layouts and round trips."""
import numpy as np
import pytest

import lowprec as lp


def test_fp4_layout_first_code_in_low_nibble():
    np.testing.assert_array_equal(lp.pack(np.array([0x1, 0x2, 0xF], np.uint8),
                                          "fp4"), [0x21, 0x0F])


def test_fp6_four_codes_in_three_bytes():
    c = np.array([1, 2, 3, 4], np.uint8)
    w = 1 | 2 << 6 | 3 << 12 | 4 << 18          # little-endian bit stream
    np.testing.assert_array_equal(lp.pack(c, "fp6_e2m3"),
                                  [w & 0xFF, (w >> 8) & 0xFF, w >> 16])


def test_int4_two_complement_nibbles():
    c = np.array([-1, 7, -8, 0], np.int8)
    np.testing.assert_array_equal(lp.pack(c, "int4"), [0x7F, 0x08])
    np.testing.assert_array_equal(
        lp.unpack(np.array([0x7F, 0x08], np.uint8), "int4", 4), c)
    np.testing.assert_array_equal(lp.pack([1, 0, 3, 2], "uint2"), [0b10110001])


@pytest.mark.parametrize("name", ["fp4", "fp6_e3m2", "fp6_e2m3", "int4",
                                  "uint4", "int2", "uint2",
                                  lp.FloatFormat(3, 2, signed=False,
                                                 infs=False, nans="none")])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 1001])
def test_round_trip(name, n):
    f = lp.get_format(name)
    rng = np.random.default_rng(n)
    if f.kind == "int":
        c = rng.integers(f.min, f.max + 1, n).astype(f.code_dtype)
    else:
        c = rng.integers(0, 1 << f.nbits, n).astype(f.code_dtype)
    p = lp.pack(c.reshape(-1, 1) if n else c, f)
    nb = f.bits if f.kind == "int" else f.nbits
    assert p.dtype == np.uint8 and p.size == (n * nb + 7) // 8
    u = lp.unpack(p, f, n)
    assert u.dtype == f.code_dtype
    np.testing.assert_array_equal(u, c)


def test_pack_errors():
    with pytest.raises(ValueError, match="pack is for formats of fewer"):
        lp.pack(np.zeros(2, np.uint8), "e4m3")
    with pytest.raises(ValueError, match="out of range"):
        lp.pack(np.array([16], np.uint8), "fp4")
    with pytest.raises(ValueError, match="need 2 bytes"):
        lp.unpack(np.zeros(1, np.uint8), "fp4", 3)
    with pytest.raises(TypeError, match="uint8"):
        lp.unpack(np.zeros(1, np.int32), "fp4", 1)
