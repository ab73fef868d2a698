"""Smoke tests of the block-quantization API (lowprec.blocks): shapes,
dtypes, round trips, special blocks, errors, independence of blocking and
threads.  The exact Fraction reference of every rule is tests/test_blocks.py."""
import os
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lowprec as lp

RECIPES = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4",
           "mxint8", "nvfp4", "fp8_1x128", "fp8_128x128"]


def _x(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # blocks spanning a wide range of magnitudes
    x = rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20, shape)
    return x.astype(dtype)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_shapes_and_roundtrip(name):
    x = _x((3, 256, 256) if name == "fp8_128x128" else (5, 200))
    bt = lp.quantize_blocks(x, name)
    fmt = lp.get_format(name)
    assert isinstance(fmt, lp.BlockFormat) and bt.format == fmt
    assert bt.codes.shape == x.shape == bt.shape
    blk = fmt.block
    if isinstance(blk, tuple):
        assert bt.scales.shape == (3, 2, 2)
    else:
        assert bt.scales.shape == (5, -(-200 // blk))
    assert np.array_equal(lp.quantize(x, name), bt.dequantize())
    assert np.array_equal(np.asarray(bt), bt.dequantize())
    d = bt.dequantize(np.float64)
    assert np.all(np.isfinite(d))
    # dequantize is the float64-exact product rounded once
    assert np.array_equal(bt.dequantize(np.float32), d.astype(np.float32))


@pytest.mark.parametrize("rule", ["floor", "ceil", "rceil", "even"])
def test_e8m0_elements_are_encode_with_the_scale(rule):
    """codes == encode(x, element, scale=X, saturate) for float64 inputs,
    where x / X is exact in float64 (powers of two, no underflow)."""
    x = _x((4, 96), 1, np.float64)
    bt = lp.quantize_blocks(x, "mxfp8_e4m3", scale_rule=rule)
    X = np.repeat(bt.scales, 32, axis=1)
    codes = lp.encode(x, "e4m3", scale=X, saturate=True)
    assert np.array_equal(codes, bt.codes.view(np.uint8))
    assert np.array_equal(lp.decode(codes, "e4m3", scale=X),
                          bt.dequantize())


def _fl(v):
    return Fraction(v)


def test_floor_rule_exact_scale():
    """floor: X = 2^(floor(log2 amax) - emax), by exact arithmetic."""
    x = _x((8, 64), 2, np.float64)
    bt = lp.quantize_blocks(x, "mxfp4")
    exps = bt.scales.view(np.uint8).astype(int) - 127
    for i in range(8):
        for j in range(2):
            amax = max(abs(_fl(v)) for v in x[i, 32 * j:32 * j + 32])
            e = 0
            while Fraction(2) ** (e + 1) <= amax:
                e += 1
            while Fraction(2) ** e > amax:
                e -= 1
            assert exps[i, j] == max(-127, min(127, e - 2))


def test_ceil_never_saturates_and_floor_hits_top_binade():
    x = _x((16, 64), 3)
    bt = lp.quantize_blocks(x, "mxfp4", scale_rule="ceil")
    c = bt.codes.view(np.uint8) & 7
    assert np.all(lp.decode(c, "e2m1") <= 6)
    # with ceil the amax maps to at most max; scaling by 2 would exceed
    bt = lp.quantize_blocks(x, "mxfp4", scale_rule="floor")
    top = (bt.codes.view(np.uint8) & 7).reshape(16, 2, 32).max(axis=2)
    assert np.all(top >= 6)          # 4.0 or 6.0 codes (top binade)


def test_shift_by_power_of_two_shifts_scale():
    x = _x((4, 64), 4)
    a = lp.quantize_blocks(x, "mxfp8_e4m3")
    b = lp.quantize_blocks(x * np.float32(8), "mxfp8_e4m3")
    assert np.array_equal(a.codes.view(np.uint8), b.codes.view(np.uint8))
    assert np.array_equal(a.scales.view(np.uint8).astype(int) + 3,
                          b.scales.view(np.uint8).astype(int))


@pytest.mark.parametrize("name", ["mxfp4", "nvfp4", "fp8_1x128"])
def test_nan_inf_and_zero_blocks(name):
    n = 128
    x = np.ones((3, n), np.float32)
    x[0, 5] = np.nan
    x[1, 0] = -np.inf
    x[2] = 0
    bt = lp.quantize_blocks(x, name)
    blk = lp.get_format(name).block
    sc = bt.scales
    assert np.all(bt.codes[:2, :blk].view(np.uint8) == 0)
    d = bt.dequantize()
    assert np.all(np.isnan(d[0, :blk])) and np.all(np.isnan(d[1, :blk]))
    assert np.all(d[2] == 0)
    if sc.dtype == np.float32:
        assert np.isnan(sc[0, 0]) and sc[2, 0] == 1
    elif name == "mxfp4":
        assert sc.view(np.uint8)[0, 0] == 0xFF
        assert sc.view(np.uint8)[2, 0] == 0       # 2^-127
    else:
        assert sc.view(np.uint8)[0, 0] == 0x7F


def test_nvfp4_two_level_rule():
    x = _x((2, 32), 5)
    bt = lp.quantize_blocks(x, "nvfp4")
    T = float(np.abs(x).max())
    S = np.float32(np.float64(2688) / T)     # exact enough here: checked
    assert float(bt.tensor_scale) == float(np.float32(1) / S)
    bt2 = lp.quantize_blocks(x, "nvfp4", tensor_amax=T)
    assert np.array_equal(bt.scales.view(np.uint8),
                          bt2.scales.view(np.uint8))
    g = np.float32(S * np.float32(1 / np.float32(6)))
    for j in range(2):
        amax = np.float32(np.abs(x[0, 16 * j:16 * j + 16]).max())
        s = lp.encode(np.float32(amax * g), "e4m3", saturate=True)
        assert s == bt.scales.view(np.uint8)[0, j]


def test_partial_blocks_axis_and_2d():
    x = _x((6, 70), 6)
    bt = lp.quantize_blocks(x, "mxfp8_e4m3")
    assert bt.scales.shape == (6, 3)
    # the partial block's scale is over its own elements
    last = lp.quantize_blocks(x[:, 64:], "mxfp8_e4m3")
    assert np.array_equal(bt.scales[:, 2:].view(np.uint8),
                          last.scales.view(np.uint8))
    # a non-last axis equals the moved axis
    y = _x((50, 3, 7), 7)
    a = lp.quantize_blocks(y, "mxfp4", axis=0)
    b = lp.quantize_blocks(np.moveaxis(y, 0, -1), "mxfp4")
    assert a.scales.shape == (2, 3, 7) and a.axis == 0
    assert np.array_equal(np.moveaxis(a.codes.view(np.uint8), 0, -1),
                          b.codes.view(np.uint8))
    assert np.array_equal(np.moveaxis(a.scales.view(np.uint8), 0, -1),
                          b.scales.view(np.uint8))
    # 2-D blocks with partial edges
    z = _x((2, 130, 200), 8)
    c = lp.quantize_blocks(z, "fp8_128x128")
    assert c.scales.shape == (2, 2, 2)
    amax = np.abs(z[1, 128:, 128:]).max()
    assert c.scales[1, 1, 1] == np.float32(np.float64(amax) / 448)


def test_stochastic_bits_do_not_depend_on_blocking_or_threads(monkeypatch):
    x = _x((64, 4096), 9)
    a = lp.quantize_blocks(x, "mxfp4", rounding="stochastic", seed=7)
    monkeypatch.setenv("LOWPREC_NUM_THREADS", "1")
    b = lp.quantize_blocks(x, "mxfp4", rounding="stochastic", seed=7)
    assert np.array_equal(a.codes.view(np.uint8), b.codes.view(np.uint8))
    # the same elements in a 2-D-blocked call with equal per-block scales
    # (a constant amax) round identically: the key is the flat index
    y = np.full((4, 64), 5.75, np.float32)
    y[:, 1::2] = np.float32(0.3)
    c = lp.quantize_blocks(y, "mxfp4", rounding="stochastic", seed=3)
    d = lp.quantize_blocks(y, "mxfp4", block=16, rounding="stochastic",
                           seed=3)
    assert np.array_equal(c.codes.view(np.uint8), d.codes.view(np.uint8))
    e = lp.encode(y, "e2m1", rounding="stochastic", seed=3, saturate=True)
    assert np.array_equal(c.codes.view(np.uint8), e)


@pytest.mark.parametrize("dtype", [np.float64, np.float16,
                                   ml_dtypes.bfloat16])
def test_input_dtypes_agree_with_float64(dtype):
    x = (_x((4, 64), 10) / 64).astype(dtype)
    ref = lp.quantize_blocks(x.astype(np.float64), "mxfp4")
    got = lp.quantize_blocks(x, "mxfp4")
    assert np.array_equal(ref.codes.view(np.uint8), got.codes.view(np.uint8))
    assert np.array_equal(ref.scales.view(np.uint8),
                          got.scales.view(np.uint8))
    q = lp.quantize(x, "mxfp4")
    assert q.dtype == np.dtype(dtype)


def test_pack_and_block_scales():
    x = _x((3, 64), 11)
    bt = lp.quantize_blocks(x, "mxfp4")
    assert np.array_equal(bt.pack(), lp.pack(bt.codes.view(np.uint8),
                                             "e2m1"))
    assert np.array_equal(lp.block_scales(x, "mxfp4").view(np.uint8),
                          bt.scales.view(np.uint8))
    assert bt.pack().size == 96


def test_encode_decode_take_e8m0_scale_arrays():
    x = _x((2, 64), 12)
    bt = lp.quantize_blocks(x, "mxfp8_e4m3")
    X = np.repeat(bt.scales, 32, axis=1)
    assert X.dtype == np.dtype(ml_dtypes.float8_e8m0fnu)
    c = lp.encode(x, "e4m3", scale=X, saturate=True)
    assert np.array_equal(lp.decode(c, "e4m3", scale=X), bt.dequantize())
    with pytest.raises(ValueError, match="scale"):
        lp.encode(x, "e4m3", scale=np.full(x.shape, np.nan).astype(
            ml_dtypes.float8_e8m0fnu))


@pytest.mark.skipif(not hasattr(ml_dtypes, "float8_e5m3fnu"),
                    reason="ml_dtypes < 0.7 has no float8_e5m3fnu")
def test_ue5m3_matches_ml_dtypes():
    f = lp.get_format("ue5m3")
    codes = np.arange(256, dtype=np.uint8)
    ref = codes.view(ml_dtypes.float8_e5m3fnu).astype(np.float64)
    got = lp.decode(codes, f, dtype=np.float64)
    assert np.array_equal(np.isnan(ref), np.isnan(got))
    ok = ~np.isnan(ref)
    assert np.array_equal(ref[ok], got[ok])
    x = np.abs(_x((4096,), 13)).astype(np.float32)
    x = x[x < 114688]
    assert np.array_equal(lp.encode(x, f),
                          x.astype(ml_dtypes.float8_e5m3fnu).view(np.uint8))
    bt = lp.quantize_blocks(_x((2, 32), 14), "nvfp4",
                            scale_format="float8_e5m3fnu")
    assert bt.scales.dtype == np.dtype(ml_dtypes.float8_e5m3fnu)
    assert np.all(np.isfinite(bt.dequantize()))


@pytest.mark.parametrize("kwargs, word", [
    (dict(block=0), "block"),
    (dict(block=(0, 4)), "block"),
    (dict(axis=2), "axis"),
    (dict(scale_format="float32", scale_rule="ceil"), "scale_rule"),
    (dict(scale_rule="nvfp4"), "scale_rule"),
    (dict(tensor_amax=-1.0), "tensor_amax"),
    (dict(tensor_amax=float("inf")), "tensor_amax"),
])
def test_bad_parameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        lp.quantize_blocks(np.ones((2, 64), np.float32), "mxfp4", **kwargs)


def test_bad_element_and_dtype():
    with pytest.raises(ValueError, match="element"):
        lp.BlockFormat("e8m0", 32, "e8m0", "floor")
    with pytest.raises(TypeError, match="complex"):
        lp.quantize_blocks(np.ones(4, np.complex64), "mxfp4")
    ints = lp.quantize_blocks(np.arange(64), "mxfp8_e4m3")
    assert np.array_equal(ints.dequantize(np.float64),
                          lp.quantize_blocks(np.arange(64.0), "mxfp8_e4m3")
                          .dequantize(np.float64))


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                  "fp8_1x128"])
def test_scaled_matmul_on_block_tensors_is_section_3(name):
    rng = np.random.default_rng(15)
    a = rng.standard_normal((9, 256)).astype(np.float32)
    b = rng.standard_normal((256, 7)).astype(np.float32)
    ba = lp.quantize_blocks(a, name)
    bb = lp.quantize_blocks(b, name, axis=0)
    bk = lp.get_format(name).block
    sa, sb = ba.scales, bb.scales
    if sa.dtype == np.dtype(ml_dtypes.float8_e4m3fn):
        sa, sb = sa.astype(np.float32), sb.astype(np.float32)
    by_hand = lp.scaled_matmul(ba.codes, bb.codes, a_scale=sa, b_scale=sb,
                               block=(bk,))
    if lp.get_format(name).two_level:
        by_hand = by_hand * (np.float32(ba.tensor_scale)
                             * np.float32(bb.tensor_scale))
    got = lp.scaled_matmul(ba, bb)
    assert got.dtype == np.float32
    assert np.array_equal(got, by_hand)
    # exact accumulation: each block product exact, rounded once
    ex = lp.scaled_matmul(ba, bb, accumulate="exact")
    assert np.allclose(ex, np.asarray(ba, np.float64)
                       @ np.asarray(bb, np.float64), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("element", ["int8_narrow", "int8", "int4"])
def test_scaled_matmul_on_integer_block_elements_is_exact(element):
    # integer elements are read as q / 2^(bits - 2) (mxint8: q / 64);
    # section 3 in Fractions with those values and the e8m0 scales
    rng = np.random.default_rng(16)
    fmt = lp.BlockFormat(element, 32, "e8m0", "floor")
    a = rng.standard_normal((3, 64)) * np.exp2(rng.integers(-20, 20, (3, 1)))
    b = rng.standard_normal((64, 2)) * np.exp2(rng.integers(-20, 20, (1, 2)))
    ba = lp.quantize_blocks(a.astype(np.float32), fmt)
    bb = lp.quantize_blocks(b.astype(np.float32), fmt, axis=0)
    from block_reference import R32 as r32     # exact Fraction rounding
    one = Fraction(1, 2 ** (lp.get_format(element).bits - 2))
    qa, qb = ba.codes.astype(int), bb.codes.astype(int)
    sa = ba.scales.astype(np.float64)
    sb = bb.scales.astype(np.float64)
    want = np.empty((3, 2), np.float32)
    for i in range(3):
        for j in range(2):
            acc = Fraction(0)
            for k in range(2):
                p = r32(sum(Fraction(int(qa[i, t]) * int(qb[t, j]))
                            for t in range(32 * k, 32 * k + 32)) * one * one)
                s = r32(Fraction(float(sa[i, k])) * Fraction(float(sb[k, j])))
                acc = r32(acc + r32(p * s))
            want[i, j] = float(acc)
    for accumulate in ("exact", "fp32"):
        assert np.array_equal(lp.scaled_matmul(ba, bb, accumulate=accumulate),
                              want), accumulate


def test_scaled_matmul_nvfp4_with_zero_block_scales():
    # rows 2^-40 below the tensor amax get e4m3 block scale 0 (signed zero
    # codes); the product is section 3 with those scales as literal zeros
    from block_reference import R32
    rng = np.random.default_rng(17)
    a = rng.standard_normal((3, 32)).astype(np.float32)
    a[1] *= np.float32(2.0 ** -40)
    b = rng.standard_normal((32, 2)).astype(np.float32)
    ba = lp.quantize_blocks(a, "nvfp4")
    bb = lp.quantize_blocks(b, "nvfp4", axis=0)
    assert (ba.scales.astype(np.float32)[1] == 0).all()
    qa = lp.decode(ba.codes.view(np.uint8), "e2m1", dtype=np.float64)
    qb = lp.decode(bb.codes.view(np.uint8), "e2m1", dtype=np.float64)
    sa = ba.scales.astype(np.float64)
    sb = bb.scales.astype(np.float64)
    t = R32(Fraction(float(ba.tensor_scale)) * Fraction(float(bb.tensor_scale)))
    want = np.empty((3, 2), np.float32)
    for i in range(3):
        for j in range(2):
            acc = Fraction(0)
            for k in range(2):
                p = R32(sum(Fraction(float(qa[i, x])) * Fraction(float(
                    qb[x, j])) for x in range(16 * k, 16 * k + 16)))
                s = R32(Fraction(float(sa[i, k])) * Fraction(float(sb[k, j])))
                acc = R32(acc + R32(p * s))
            want[i, j] = float(R32(acc * t))
    for accumulate in ("exact", "fp32"):
        got = lp.scaled_matmul(ba, bb, accumulate=accumulate)
        assert np.array_equal(got, want), accumulate
    assert (got[1] == 0).all()


def test_scaled_matmul_block_mismatch():
    a = lp.quantize_blocks(np.ones((4, 64), np.float32), "mxfp4")
    b = lp.quantize_blocks(np.ones((64, 4), np.float32), "mxfp4", axis=0,
                           block=16)
    with pytest.raises(ValueError, match="blocks along K"):
        lp.scaled_matmul(a, b)
    c = lp.quantize_blocks(np.ones((64, 4), np.float32), "mxfp4")
    with pytest.raises(ValueError, match="axis 0"):
        lp.scaled_matmul(a, c)


@pytest.mark.parametrize("name, kw", [
    ("nvfp4", {}), ("fp8_1x128", {}),
    ("fp8_1x128", {"scale_rule": "encode"}),
    ("fp8_1x128", {"scale_rule": "pow2"}),
    ("mxfp4", {"scale_rule": "rceil"}), ("mxfp4", {"scale_rule": "even"}),
    ("mxfp6_e2m3", {"scale_rule": "ceil"}), ("mxint8", {})])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic",
                                      "toward_positive", "to_odd"])
def test_float32_path_agrees_with_the_general_core(name, kw, rounding):
    """float32 inputs take the float32 core with a moved bias; the same
    values as float64 take the general core: same bits."""
    rng = np.random.default_rng(16)
    x = (rng.standard_normal((16, 256))
         * np.exp2(rng.integers(-30, 30, (16, 1)))).astype(np.float32)
    x[3, :40] = np.float32(1e-41)            # a block of subnormals
    x[4, :32] = np.float32(2.0 ** -140)
    a = lp.quantize_blocks(x, name, rounding=rounding, seed=5, **kw)
    b = lp.quantize_blocks(x.astype(np.float64), name, rounding=rounding,
                           seed=5, **kw)
    assert np.array_equal(np.asarray(a.codes).view(np.uint8),
                          np.asarray(b.codes).view(np.uint8))
    assert np.array_equal(np.asarray(a.scales).view(np.uint8),
                          np.asarray(b.scales).view(np.uint8))
    assert float(a.tensor_scale) == float(b.tensor_scale)


def test_nvfp4_zero_scale_block_gets_signed_zeros():
    x = np.full(32, 1000.0, np.float32)
    x[16:] = np.float32(1e-7)
    x[17::2] = np.float32(-1e-7)
    for xs in (x, x.astype(np.float64)):
        bt = lp.quantize_blocks(xs, "nvfp4")
        assert bt.scales.view(np.uint8)[1] == 0
        c = bt.codes.view(np.uint8)[16:]
        assert np.array_equal(c, np.where(x[16:] < 0, 8, 0))


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                    "fp8_1x128"])
def test_scaled_matmul_nan_block_propagates(recipe):
    """A block that held NaN or inf has the NaN scale: every output whose
    sum takes that block is NaN (p_b * NaN), every other output is that of
    the same product with the block cleaned."""
    rng = np.random.default_rng(7)
    bk = 128 if recipe == "fp8_1x128" else 32
    M, K, N = 5, 2 * bk, 6
    x = rng.standard_normal((M, K)).astype(np.float32)
    y = rng.standard_normal((K, N)).astype(np.float32)
    xn, yn = x.copy(), y.copy()
    xn[1, 3] = np.nan
    yn[bk + 2, 4] = np.inf
    kw = dict(tensor_amax=8.0) if recipe == "nvfp4" else {}
    qa = lp.quantize_blocks(xn, recipe, **kw)
    qb = lp.quantize_blocks(yn, recipe, axis=0, **kw)
    res = lp.scaled_matmul(qa, qb, accumulate="exact")
    clean = lp.scaled_matmul(lp.quantize_blocks(x, recipe, **kw),
                             lp.quantize_blocks(y, recipe, axis=0, **kw),
                             accumulate="exact")
    nan = np.zeros((M, N), bool)
    nan[1, :] = True
    nan[:, 4] = True
    assert np.isnan(res[nan]).all()
    assert np.array_equal(res[~nan].view(np.uint32),
                          clean[~nan].view(np.uint32))
    codes = lp.scaled_matmul(qa, qb, accumulate="exact", out_format="e5m2")
    assert (codes[nan] & 0x7F > 0x7C).all()          # e5m2 NaN codes
