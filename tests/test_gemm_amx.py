"""lp_gemm_exact_i32 (gemm_amx.c): the exact integer GEMM on AMX-INT8 and
its portable int64 path, both against matrix products in Python integers."""
import concurrent.futures

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lowprec._clib import ffi, lib

AMX = bool(lib.lp_amx_available())
KC = 1 << 15          # k per int32 chunk in gemm_amx.c (step 3)

PATHS = [
    pytest.param("amx", marks=pytest.mark.skipif(
        not AMX, reason="no AMX-INT8 on this CPU/OS")),
    "ref",
]


def gemm(path, a, b, bits, r0=0, r1=None, fill=-7):
    """(return code, c) of one call; c starts as `fill` everywhere."""
    a = np.ascontiguousarray(a, np.int32)
    b = np.ascontiguousarray(b, np.int32)
    m, k = a.shape
    n = b.shape[1]
    r1 = m if r1 is None else r1
    c = np.full((m, n), fill, np.int64)
    fn = lib.lp_gemm_exact_i32 if path == "amx" else lib.lp_gemm_exact_i32_ref
    rc = fn(ffi.cast("int32_t *", a.ctypes.data),
            ffi.cast("int32_t *", b.ctypes.data), m, n, k, bits,
            ffi.cast("int64_t *", c.ctypes.data), r0, r1)
    return rc, c


def exact(a, b):
    """The product in Python integers (no overflow whatever the sizes)."""
    a = np.asarray(a).astype(object)
    b = np.asarray(b).astype(object)
    if a.shape[1] == 0:
        return np.zeros((a.shape[0], b.shape[1]), object)
    return a @ b


def check(path, a, b, bits, r0=0, r1=None):
    rc, c = gemm(path, a, b, bits, r0, r1)
    assert rc == 0
    r1 = a.shape[0] if r1 is None else r1
    want = exact(a[r0:r1], b)
    assert (c[r0:r1].astype(object) == want).all()
    # rows outside [r0, r1) are left alone
    assert (c[:r0] == -7).all() and (c[r1:] == -7).all()


def rand(rng, shape, bits):
    lim = (1 << bits) - 1
    return rng.integers(-lim, lim + 1, shape, dtype=np.int64).astype(np.int32)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bits", [0, 1, 7, 8, 14, 15, 18, 21])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (16, 16, 64), (17, 33, 65),
                                   (33, 17, 129), (5, 70, 1), (2, 3, 200),
                                   (40, 31, 63), (3, 150, 70), (18, 260, 5)])
def test_random(path, bits, m, n, k):
    rng = np.random.default_rng(bits * 1000 + m * 7 + n * 3 + k)
    check(path, rand(rng, (m, k), bits), rand(rng, (k, n), bits), bits)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("m,n,k", [(0, 0, 0), (0, 5, 3), (3, 0, 4),
                                   (3, 4, 0), (0, 4, 0)])
def test_empty(path, m, n, k):
    a = np.ones((m, k), np.int32)
    b = np.ones((k, n), np.int32)
    rc, c = gemm(path, a, b, 18)
    assert rc == 0
    assert (c == 0).all()          # k = 0: every row of c set to 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bits", [1, 7, 8, 14, 15, 18, 21])
@pytest.mark.parametrize("sa,sb", [(1, 1), (-1, -1), (1, -1), (-1, 1)])
def test_extremes(path, bits, sa, sb):
    """Every operand +-(2^bits - 1): the largest limbs and sums."""
    lim = (1 << bits) - 1
    a = np.full((19, 130), sa * lim, np.int32)
    b = np.full((130, 21), sb * lim, np.int32)
    check(path, a, b, bits)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bits", [7, 14, 18, 21])
def test_all_negative_and_alternating(path, bits):
    rng = np.random.default_rng(bits)
    lim = (1 << bits) - 1
    a = -rng.integers(0, lim + 1, (23, 77)).astype(np.int32)
    b = -rng.integers(0, lim + 1, (77, 18)).astype(np.int32)
    check(path, a, b, bits)
    sign = np.where(np.arange(77) % 2 == 0, 1, -1).astype(np.int32)
    check(path, np.full((23, 77), -lim, np.int32) * sign,
          np.full((77, 18), lim, np.int32) * sign[:, None], bits)


@pytest.mark.parametrize("path", PATHS)
def test_limb_boundaries(path):
    """Values whose balanced base-2^8 digits are -128 or 127 at every
    position, or carry into the next limb (x = 128, 32767, -32896...)."""
    vals = []
    for base in (0, 1 << 8, 1 << 16):
        for d in (127, 128, -128, -129, 255, 256):
            vals += [d * max(base, 1), d * max(base, 1) + 127,
                     d * max(base, 1) - 128]
    vals = np.array([v for v in vals if abs(v) < 1 << 21], np.int32)
    a = np.resize(vals, (len(vals), 70))
    b = np.resize(vals[::-1], (70, 33))
    check(path, a, b, 21)


@pytest.mark.parametrize("path", PATHS)
def test_e4m3_grid(path):
    """The motivating use: all finite e4m3 values times 2^9 (bits = 18)."""
    v = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    v = v.astype(np.float64)
    ints = (v[np.isfinite(v)] * 512).astype(np.int32)
    assert np.abs(ints).max() == 229376 < 1 << 18
    a = np.resize(ints, (37, 254))
    b = np.resize(np.roll(ints, 5), (254, 29))
    check(path, a, b, 18)


@pytest.mark.parametrize("path", PATHS)
def test_long_k_crosses_int32_chunks(path):
    """k > 2^16: one shift sum S_1 = A0 B1 + A1 B0 of x = -32896 (digits
    -128, -128) grows by 2^15 per k, past 2^31 without the K chunks."""
    k = 2 * KC + 4464
    a = np.full((2, k), -32896, np.int32)
    b = np.full((k, 3), -32896, np.int32)
    rc, c = gemm(path, a, b, 18)
    assert rc == 0
    assert (c == k * 32896 ** 2).all()
    rng = np.random.default_rng(3)
    check(path, rand(rng, (3, k), 21), rand(rng, (k, 2), 21), 21)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("r0,r1", [(0, 0), (5, 5), (0, 1), (3, 20),
                                   (16, 32), (17, 50), (49, 50)])
def test_row_ranges(path, r0, r1):
    rng = np.random.default_rng(r0 * 100 + r1)
    check(path, rand(rng, (50, 90), 18), rand(rng, (90, 35), 18), 18,
          r0, r1)


@settings(max_examples=40)
@given(m=st.integers(1, 40), n=st.integers(1, 40), k=st.integers(1, 200),
       bits=st.integers(0, 21), seed=st.integers(0, 2 ** 32 - 1),
       data=st.data())
def test_amx_matches_reference(m, n, k, bits, seed, data):
    """Both paths against Python integers on drawn shapes and row ranges."""
    rng = np.random.default_rng(seed)
    a, b = rand(rng, (m, k), bits), rand(rng, (k, n), bits)
    r0 = data.draw(st.integers(0, m))
    r1 = data.draw(st.integers(r0, m))
    for path in (["amx"] if AMX else []) + ["ref"]:
        check(path, a, b, bits, r0, r1)


@pytest.mark.parametrize("path", PATHS)
def test_two_threads(path):
    """Calls on disjoint row ranges from two threads (cffi drops the GIL)
    fill c as one call does."""
    rng = np.random.default_rng(11)
    m, n, k = 150, 70, 300
    a, b = rand(rng, (m, k), 18), rand(rng, (k, n), 18)
    c = np.full((m, n), -7, np.int64)
    fn = lib.lp_gemm_exact_i32 if path == "amx" else lib.lp_gemm_exact_i32_ref
    pa = ffi.cast("int32_t *", a.ctypes.data)
    pb = ffi.cast("int32_t *", b.ctypes.data)
    pc = ffi.cast("int64_t *", c.ctypes.data)
    cuts = [0, 37, 80, 81, 150]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            futs = [pool.submit(fn, pa, pb, m, n, k, 18, pc, r0, r1)
                    for r0, r1 in zip(cuts, cuts[1:])]
            assert [f.result() for f in futs] == [0] * 4
            assert (c.astype(object) == exact(a, b)).all()


@pytest.mark.parametrize("path", PATHS)
def test_errors(path):
    """-1 bad argument, -3 / -4 an element of a / b out of range; c is
    left untouched."""
    a = np.zeros((20, 70), np.int32)
    b = np.zeros((70, 37), np.int32)
    for bits in (-1, 22, 31):
        assert gemm(path, a, b, bits)[0] == -1
    for r0, r1 in ((0, 21), (3, 2), (-1, 2)):
        assert gemm(path, a, b, 18, r0, r1)[0] == -1
    # every position class: first, inside, the partial tiles at the ends
    a_spots = [(0, 0), (2, 4), (17, 63), (19, 64), (19, 69), (16, 0)]
    b_spots = [(0, 0), (4, 2), (63, 17), (64, 31), (69, 36), (68, 32),
               (3, 15)]
    for bits in (0, 7, 14, 18, 21):
        lim = (1 << bits) - 1
        for bad in (lim + 1, -lim - 1, 2 ** 31 - 1, -2 ** 31):
            for i, j in a_spots:
                a2 = a.copy()
                a2[i, j] = bad
                rc, c = gemm(path, a2, b, bits)
                assert rc == -3 and (c == -7).all()
                # only the rows [r0, r1) of a are read
                assert gemm(path, a2, b, bits, i + 1, 20)[0] == 0
                assert gemm(path, a2, b, bits, 0, i)[0] == 0
            for i, j in b_spots:
                b2 = b.copy()
                b2[i, j] = bad
                rc, c = gemm(path, a, b2, bits)
                assert rc == -4 and (c == -7).all()
                assert gemm(path, a, b2, bits, 5, 5)[0] == 0
                assert gemm(path, a2, b2, bits)[0] == -3     # a first
    # k * (2^21 - 1)^2 past int64: refused before any element is read
    k = 3 << 20
    one = np.zeros(1, np.int32)
    out = np.zeros(1, np.int64)
    fn = lib.lp_gemm_exact_i32 if path == "amx" else lib.lp_gemm_exact_i32_ref
    args = (ffi.cast("int32_t *", one.ctypes.data),
            ffi.cast("int32_t *", one.ctypes.data), 0, 0, k)
    assert fn(*args, 21, ffi.cast("int64_t *", out.ctypes.data), 0, 0) == -1
    assert fn(*args, 20, ffi.cast("int64_t *", out.ctypes.data), 0, 0) == 0


def test_available_matches_cpu_flags():
    """lp_amx_available() is 1 only where the kernel reports AMX-TILE and
    AMX-INT8, and stays the same on a second call."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((set(line.split(":")[1].split()) for line in fh
                          if line.startswith("flags")), set())
    except OSError:
        flags = set()
    if not {"amx_tile", "amx_int8"} <= flags:
        assert not AMX
    assert lib.lp_amx_available() == AMX
