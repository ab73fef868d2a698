"""lp.quantize_blocks and friends (API.md section 8) against the exact
reference of tests/block_reference.py.

Written from API.md alone, not from the implementation.  The module skips
while the tree has no lp.quantize_blocks; the reference itself is tested by
test_block_reference.py, which always runs.
"""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lowprec as lp

if not hasattr(lp, "quantize_blocks"):
    pytest.skip("lp.quantize_blocks is not implemented in this tree",
                allow_module_level=True)

import lowprec.testing as lpt                                   # noqa: E402
from block_reference import (ELEMENTS, R32, RECIPES, RULES,     # noqa: E402
                             ref_dequantize,
                             ref_quantize_blocks)

F = Fraction
E8M0_RECIPES = [r for r in RECIPES if RECIPES[r][2] == "e8m0"]
SCALE_DTYPES = {"e8m0": np.dtype(ml_dtypes.float8_e8m0fnu),
                "e4m3": np.dtype(ml_dtypes.float8_e4m3fn),
                "float32": np.dtype(np.float32)}
# every (recipe, rule) pair: each e8m0 recipe under the four e8m0 rules,
# nvfp4, and the float32 recipes under their three rules
RECIPE_RULES = ([(r, rule) for r in E8M0_RECIPES for rule in RULES["e8m0"]]
                + [("nvfp4", "nvfp4")]
                + [(r, rule) for r in ("fp8_1x128", "fp8_128x128")
                   for rule in RULES["float32"]])


def _kw(recipe, rule):
    return {} if rule == RECIPES[recipe][3] else {"scale_rule": rule}


def _scale_bits(scales, sfmt):
    a = np.asarray(scales)
    assert a.dtype == SCALE_DTYPES[sfmt], (a.dtype, sfmt)
    if sfmt == "float32":
        return a.view(np.uint32).astype(np.int64)
    return a.view(np.uint8).astype(np.int64)


def code_ints(codes):
    """Element codes as int64: bt.codes may be a code array (uint8, int8
    for mxint8) or an ml_dtypes array of the element type (its bits)."""
    a = np.asarray(codes)
    if a.dtype.kind not in "iu":
        assert a.dtype.itemsize == 1, a.dtype
        a = a.view(np.uint8)
    return a.astype(np.int64)


def assert_matches(bt, rb, x):
    """codes, scales (as bits) and tensor_scale of bt equal the reference."""
    assert bt.shape == x.shape
    codes = np.asarray(bt.codes)
    assert codes.shape == x.shape
    if rb.element.is_int:
        assert codes.dtype == np.int8
    else:                            # code array or ml_dtypes element array
        assert codes.dtype == np.uint8 or codes.dtype == np.dtype(
            getattr(ml_dtypes, rb.element.name)), codes.dtype
    got = _scale_bits(bt.scales, rb.scale_format)
    assert got.shape == rb.scale_shape
    want = rb.scale_codes
    if rb.scale_format == "float32":               # any NaN bits for NaN
        nan = np.isnan(np.asarray(bt.scales))
        np.testing.assert_array_equal(nan, rb.nan_block)
        got, want = np.where(nan, 0, got), np.where(rb.nan_block, 0, want)
    bad = np.argwhere(got != want)
    assert bad.size == 0, (
        f"{len(bad)} scales differ, first at {tuple(bad[0])}: "
        f"got {got[tuple(bad[0])]:#x} want {want[tuple(bad[0])]:#x}")
    c = code_ints(codes)
    bad = np.argwhere(c != rb.codes)
    assert bad.size == 0, (
        f"{len(bad)} of {c.size} codes differ, first at {tuple(bad[0])}: "
        f"x={x[tuple(bad[0])]!r} got {c[tuple(bad[0])]:#x} "
        f"want {rb.codes[tuple(bad[0])]:#x}")
    if rb.tensor_scale is not None:
        assert F(float(bt.tensor_scale)) == rb.tensor_scale


def check(x, recipe, **kw):
    rb = ref_quantize_blocks(x, recipe, **kw)
    bt = lp.quantize_blocks(x, recipe, **kw)
    assert_matches(bt, rb, x)
    return bt, rb


def wide_tensor(rng, shape, block, lo=-60, hi=60, dtype=np.float32,
                zeros=True):
    """Blocks of normal values, each block scaled by its own 2^k."""
    x = rng.normal(size=shape)
    nb = -(-shape[-1] // block)
    k = rng.integers(lo, hi, shape[:-1] + (nb,))
    x = x * np.exp2(np.repeat(k, block, axis=-1)[..., :shape[-1]])
    if zeros:
        x.reshape(-1)[rng.integers(0, x.size, x.size // 10)] = 0.0
        if shape[-1] >= block:
            x[..., :block] = np.where(rng.random(shape[:-1] + (1,)) < 0.2,
                                      0.0, x[..., :block])
    return x.astype(dtype)


# ---------------------------------------------------------------------------
# the reference against quantize_blocks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe, rule", RECIPE_RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_wide_range(recipe, rule, dtype):
    rng = np.random.default_rng(abs(hash((recipe, rule))) % 2**32)
    blk = RECIPES[recipe][1]
    if isinstance(blk, tuple):
        x = wide_tensor(rng, (3, 8, 12), 4, dtype=dtype)
        check(x, recipe, block=(4, 4), **_kw(recipe, rule))
    else:
        x = wide_tensor(rng, (6, 3 * blk + 5), blk, dtype=dtype)
        check(x, recipe, **_kw(recipe, rule))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                    "fp8_1x128"])
def test_half_inputs(recipe, dtype):
    rng = np.random.default_rng(7)
    blk = RECIPES[recipe][1]
    x = wide_tensor(rng, (4, 2 * blk), blk, lo=-8, hi=8).astype(dtype)
    check(x, recipe)


def _boundary_amaxes(el):
    """amax values where the rules differ, for element el, at a few 2^k."""
    m = float(el.max)
    top = 2.0 ** el.emax
    half_up = top * (2 - 2.0 ** -(el.mbits + 1))   # 'even' carries here
    out = []
    for k in (-100, -20, -3, 0, 1, 7, 60):
        s = 2.0 ** k
        for v in (top * s, m * s, half_up * s, top * 2 * s, 1.5 * top * s):
            v32 = np.float32(v)
            out += [v32, np.nextafter(v32, np.float32(0)),
                    np.nextafter(v32, np.float32(np.inf))]
    return np.array(out, np.float32)


@pytest.mark.parametrize("recipe, rule", RECIPE_RULES)
def test_amax_at_rule_boundaries(recipe, rule):
    el = ELEMENTS[RECIPES[recipe][0]]
    amaxes = _boundary_amaxes(el)
    blk = RECIPES[recipe][1]
    b = 16 if isinstance(blk, tuple) else blk
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (len(amaxes), b)).astype(np.float32)
    x *= amaxes[:, None]
    x[:, 3] = amaxes * np.where(rng.random(len(amaxes)) < 0.5, -1, 1)
    x[:, 5] = amaxes / np.float32(2 ** (el.mbits + 1))   # finer than a gap
    if isinstance(blk, tuple):
        check(x, recipe, block=(1, 16), **_kw(recipe, rule))
    elif recipe == "nvfp4":
        # two-level: the tensor amax governs S; give each row its own T via
        # tensor_amax (several calls), and the default T on the whole tensor
        check(x, recipe)
        for row in x[::7]:
            check(row[None], recipe, tensor_amax=float(np.max(np.abs(row))))
    else:
        check(x, recipe, **_kw(recipe, rule))


def _boundary_amaxes64(el):
    """float64 amax values within a float32 ulp of the boundaries: rceil
    (R32(amax / max) may round down to a power of two where ceil does not)
    and floor/even (an amax just below 2^k must not be rounded to float32)
    differ from each other only there."""
    out = []
    for k in (-90, -3, 0, 5, 40):
        s = 2.0 ** k
        for v in (float(el.max) * s, 2.0 ** el.emax * s,
                  2.0 ** el.emax * (2 - 2.0 ** -(el.mbits + 1)) * s):
            out += [v, v * (1 - 2.0 ** -40), v * (1 + 2.0 ** -40),
                    v * (1 + 2.0 ** -24), v * (1 + 2.0 ** -24 + 2.0 ** -45),
                    v * (1 - 2.0 ** -25), v * (1 - 2.0 ** -25 - 2.0 ** -45)]
    return np.array(out, np.float64)


@pytest.mark.parametrize("recipe, rule", [rr for rr in RECIPE_RULES
                                          if RECIPES[rr[0]][2] == "e8m0"])
def test_float64_amax_at_rule_boundaries(recipe, rule):
    el = ELEMENTS[RECIPES[recipe][0]]
    amaxes = _boundary_amaxes64(el)
    rng = np.random.default_rng(23)
    x = rng.uniform(-1, 1, (len(amaxes), 32)) * amaxes[:, None]
    x[:, 0] = amaxes
    check(x, recipe, **_kw(recipe, rule))


@pytest.mark.parametrize("recipe", E8M0_RECIPES)
def test_float64_elements_round_once(recipe):
    # blocks with amax = max * 2^k (X = 2^k under every rule) holding the
    # element midpoints times 2^k moved by 2^-40 relative: rounding x to
    # float32 first would land on the midpoint itself and tie
    el = ELEMENTS[RECIPES[recipe][0]]
    if el.is_int:
        vals = [F(q, 64) for q in range(0, 128)]
    else:
        vals = sorted({abs(F(v)) for v in lp.get_format(el.name).values()})
    mids = [float((a + b) / 2) for a, b in zip(vals, vals[1:])]
    rows = []
    for k in (-30, 0, 17):
        for i in range(0, len(mids), 15):
            m = np.array(mids[i:i + 15]) * 2.0 ** k
            r = np.zeros(32)
            r[0] = float(el.max) * 2.0 ** k
            r[1:1 + len(m)] = m * (1 + 2.0 ** -40)
            r[16:16 + len(m)] = -m * (1 - 2.0 ** -40)
            rows.append(r)
    x = np.array(rows)
    for rule in RULES["e8m0"]:
        bt, rb = check(x, recipe, scale_rule=rule)
        assert (_exp(bt).reshape(3, -1) == np.array([[-30], [0], [17]])).all()


@pytest.mark.parametrize("recipe, rule", RECIPE_RULES)
def test_float_extremes(recipe, rule):
    fmax = np.finfo(np.float32).max
    tiny = np.float32(2.0 ** -149)
    rows = [[fmax, 1.0], [-fmax, fmax], [tiny, 0.0], [-tiny, tiny],
            [np.float32(2.0 ** -126), tiny],
            [np.nextafter(np.float32(2.0 ** -126), 0), 0.0]]
    sfmt = RECIPES[recipe][2]
    if sfmt == "float32":
        rows = rows[:2] + [[np.float32(2.0 ** -100), 1e-31]]  # s defined
    if recipe == "nvfp4":
        rows = rows[:2]            # tiny blocks under T = max: s = 0
    x = np.zeros((len(rows), 16 if recipe == "nvfp4" else 32), np.float32)
    for i, r in enumerate(rows):
        x[i, :len(r)] = r
    blk = RECIPES[recipe][1]
    if isinstance(blk, tuple):
        check(x, recipe, block=(1, 32), **_kw(recipe, rule))
    else:
        xx = x if sfmt != "float32" else np.pad(x, ((0, 0), (0, 96)))
        check(xx, recipe, **_kw(recipe, rule))


@pytest.mark.parametrize("recipe", E8M0_RECIPES)
@pytest.mark.parametrize("rule", RULES["e8m0"])
def test_e8m0_clamp_float64_beyond_float32(recipe, rule):
    x = np.zeros((4, 32))
    x[0, :2] = [1e300, -1e280]            # exponent > 127: clamp to 127
    x[1, :2] = [1e-300, 3e-310]           # < -127: clamp to -127, codes 0
    x[2, :2] = [2.0 ** 140, 2.0 ** 120]
    x[3, :2] = [2.0 ** -140, -2.0 ** -135]
    bt, rb = check(x, recipe, scale_rule=rule)
    e = _scale_bits(bt.scales, "e8m0").ravel() - 127
    assert e[0] == 127 and e[1] == -127


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "mxint8",
                                    "nvfp4", "fp8_1x128"])
def test_nan_inf_blocks(recipe):
    blk = RECIPES[recipe][1]
    rng = np.random.default_rng(9)
    x = rng.normal(size=(5, 2 * blk + 3)).astype(np.float32)
    x[0, 1] = np.nan
    x[1, blk + 2] = np.inf
    x[2, -1] = -np.inf                    # in the partial block
    x[3, 0] = np.nan
    x[3, 1] = np.inf
    kw = {"tensor_amax": 4.0} if recipe == "nvfp4" else {}
    bt, rb = check(x, recipe, **kw)
    assert rb.nan_block.sum() == 4
    d = bt.dequantize()
    np.testing.assert_array_equal(np.isnan(d), np.isnan(ref_dequantize(rb)))
    assert np.isnan(d[0, :blk]).all() and not np.isnan(d[0, blk:]).any()


@pytest.mark.parametrize("recipe", ["mxfp6_e2m3", "mxint8", "nvfp4",
                                    "fp8_1x128"])
def test_partial_blocks_and_axis0(recipe):
    blk = RECIPES[recipe][1]
    rng = np.random.default_rng(10)
    x = wide_tensor(rng, (3, 2 * blk + 7), blk)
    check(x, recipe)
    xt = np.ascontiguousarray(x.T)        # blocks along axis 0
    bt, rb = check(xt, recipe, axis=0)
    assert bt.axis in (0, -xt.ndim)
    check(x.T, recipe, axis=0)            # a non-contiguous view
    check(x[::-1, ::2], recipe, axis=-1)


@pytest.mark.parametrize("recipe", ["mxfp4", "mxfp8_e5m2", "nvfp4"])
def test_leading_shapes_and_middle_axis(recipe):
    blk = RECIPES[recipe][1]
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 3, blk + 5)).astype(np.float32)
    x *= np.exp2(rng.integers(-20, 20, (2, 3, 1)))
    check(x, recipe)
    check(np.moveaxis(x, -1, 1).copy(), recipe, axis=1)
    check(x[0, 0], recipe)                # 1-d


@pytest.mark.parametrize("rule", RULES["float32"])
def test_2d_blocks(rule):
    rng = np.random.default_rng(12)
    x = wide_tensor(rng, (2, 10, 9), 3)
    kw = _kw("fp8_128x128", rule)
    bt, rb = check(x, "fp8_128x128", block=(4, 4), **kw)
    assert np.asarray(bt.scales).shape == (2, 3, 3)
    check(x[0], "fp8_128x128", block=(4, 4), **kw)
    check(x[0], "fp8_128x128", block=(3, 5), **kw)
    # mxfp8 with 2-D blocks too (the block override is general)
    check(x[0], "mxfp8_e4m3", block=(2, 4))


def test_small_tensor_default_128x128():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(5, 7)).astype(np.float32)   # one partial block
    bt, rb = check(x, "fp8_128x128")
    assert np.asarray(bt.scales).shape == (1, 1)


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                    "fp8_1x128", "mxint8"])
def test_stochastic_against_reference(recipe):
    blk = RECIPES[recipe][1]
    rng = np.random.default_rng(14)
    x = wide_tensor(rng, (3, 2 * blk), blk, lo=-10, hi=10)
    for seed in (0, 12345):
        check(x, recipe, rounding="stochastic", seed=seed)


@pytest.mark.parametrize("rounding", ["toward_zero", "toward_positive",
                                      "toward_negative", "nearest_away",
                                      "to_odd"])
@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "nvfp4",
                                     "fp8_1x128"])
def test_rounding_modes(recipe, rounding):
    blk = RECIPES[recipe][1]
    rng = np.random.default_rng(15)
    x = wide_tensor(rng, (3, 2 * blk), blk, lo=-10, hi=10)
    check(x, recipe, rounding=rounding)


def test_all_zero_block():
    x = np.zeros((2, 32), np.float32)
    x[1, 4] = -0.0
    x[1, 7] = 0.0
    for recipe in E8M0_RECIPES:
        bt = lp.quantize_blocks(x, recipe)
        assert (_scale_bits(bt.scales, "e8m0") == 0).all()     # 2^-127
        # ASSUMPTION-free part: every code is a zero (of either sign)
        vals = bt.dequantize(np.float64)
        assert (vals == 0).all()
        assert (code_ints(bt.codes)[0] == 0).all()


def test_block_scales_alone():
    rng = np.random.default_rng(16)
    x = wide_tensor(rng, (3, 70), 32)
    for recipe, rule in RECIPE_RULES:
        kw = _kw(recipe, rule)
        if isinstance(RECIPES[recipe][1], tuple):
            kw["block"] = (2, 32)
        bt = lp.quantize_blocks(x, recipe, **kw)
        s = lp.block_scales(x, recipe, **kw)
        sfmt = RECIPES[recipe][2]
        np.testing.assert_array_equal(_scale_bits(s, sfmt),
                                      _scale_bits(bt.scales, sfmt))


def test_block_format_objects():
    f = lp.get_format("mxfp4")
    assert isinstance(f, lp.BlockFormat)
    g = lp.BlockFormat("float4_e2m1fn", 32, "float8_e8m0fnu", "floor")
    rng = np.random.default_rng(17)
    x = wide_tensor(rng, (2, 64), 32)
    a = lp.quantize_blocks(x, f)
    b = lp.quantize_blocks(x, g)
    rb = ref_quantize_blocks(x, "mxfp4")
    assert_matches(a, rb, x)
    assert_matches(b, rb, x)
    assert a.format == f or a.format.name == "mxfp4"


# ---------------------------------------------------------------------------
# dequantize, __array__, pack, quantize
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("recipe, rule", RECIPE_RULES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dequantize_is_the_exact_product_rounded_once(recipe, rule, dtype):
    rng = np.random.default_rng(18)
    blk = RECIPES[recipe][1]
    kw = _kw(recipe, rule)
    if isinstance(blk, tuple):
        kw["block"] = (2, 32)
        blk = 32
    x = wide_tensor(rng, (4, 2 * blk + 3), blk, lo=-140, hi=125,
                    dtype=np.float64)
    if RECIPES[recipe][2] == "float32":      # keep s = R32(amax/max) > 0
        x = wide_tensor(rng, (4, 2 * blk + 3), blk, lo=-90, hi=90,
                        dtype=np.float64)
    if recipe == "nvfp4":
        x = wide_tensor(rng, (4, 2 * blk + 3), blk, lo=-4, hi=4,
                        dtype=np.float64)
    bt, rb = check(x, recipe, **kw)
    got = bt.dequantize(dtype=dtype)
    want = ref_dequantize(rb, dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == x.shape
    eq = (got == want) | (np.isnan(got) & np.isnan(want))
    same_sign = np.signbit(got) == np.signbit(want)
    assert eq.all() and same_sign[~np.isnan(want)].all(), \
        (x[~eq][:5], got[~eq][:5], want[~eq][:5])
    if dtype == np.float32:
        d = np.asarray(bt)
        np.testing.assert_array_equal(d, want)


def test_dequantize_subnormal_products_round_once():
    # e8m0 X = 2^-127 with fp8 elements: element * X is far below float32's
    # normals, where rounding e4m3 -> float32 then scaling would round twice
    x = np.zeros((1, 32))
    x[0, :6] = [448 * 2.0 ** -135, 1.375 * 2.0 ** -135, 2.0 ** -135,
                -1.125 * 2.0 ** -140, 1.625 * 2.0 ** -141, 2.0 ** -130]
    bt, rb = check(x, "mxfp8_e4m3")
    np.testing.assert_array_equal(bt.dequantize(np.float32),
                                  ref_dequantize(rb, np.float32))
    np.testing.assert_array_equal(bt.dequantize(np.float64),
                                  ref_dequantize(rb, np.float64))


@pytest.mark.parametrize("recipe", ["mxfp4", "mxfp6_e3m2", "mxfp6_e2m3",
                                    "nvfp4"])
def test_pack(recipe):
    rng = np.random.default_rng(19)
    blk = RECIPES[recipe][1]
    x = wide_tensor(rng, (3, 4 * blk), blk)
    bt = lp.quantize_blocks(x, recipe)
    el = RECIPES[recipe][0]
    np.testing.assert_array_equal(
        bt.pack(), lp.pack(code_ints(bt.codes).astype(np.uint8), el))


def _quantize_vs_blocks(recipe, dtype, kw):
    rng = np.random.default_rng(20)
    blk = RECIPES[recipe][1]
    blk = 32 if isinstance(blk, tuple) else blk
    shape = (3, 2 * blk + 1) if "block" not in kw else (64, 2 * blk + 1)
    x = wide_tensor(rng, shape, blk, lo=-30, hi=30, dtype=dtype)
    x[1, 3] = np.nan
    q = lp.quantize(x, recipe, **kw)
    d = lp.quantize_blocks(x, recipe, **kw).dequantize(dtype=dtype)
    assert q.dtype == x.dtype
    np.testing.assert_array_equal(q, d)
    q = lp.quantize(x, recipe, rounding="stochastic", seed=3, **kw)
    d = lp.quantize_blocks(x, recipe, rounding="stochastic", seed=3,
                           **kw).dequantize(dtype=dtype)
    np.testing.assert_array_equal(q, d)


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_is_dequantize_of_quantize_blocks(recipe, dtype):
    _quantize_vs_blocks(recipe, dtype, {})


@pytest.mark.parametrize("recipe, rule", [rr for rr in RECIPE_RULES
                                          if rr[1] != RECIPES[rr[0]][3]])
def test_quantize_takes_the_overrides_of_quantize_blocks(recipe, rule):
    # API.md: lp.quantize(x, "mxfp4", ...) is dequantize(quantize_blocks):
    # the keyword arguments of quantize_blocks carry over
    _quantize_vs_blocks(recipe, np.float32, {"scale_rule": rule})


@pytest.mark.parametrize("kw", [{"block": 16}, {"axis": 0},
                                {"tensor_amax": 8.0}])
def test_quantize_takes_block_axis_tensor_amax(kw):
    _quantize_vs_blocks("nvfp4" if "tensor_amax" in kw else "mxfp4",
                        np.float32, kw)


# ---------------------------------------------------------------------------
# scaled_matmul on BlockTensors = section 3 with the scales by hand
# ---------------------------------------------------------------------------

def _exact_blocked_matmul(a_codes, a_el, a_scales, b_codes, b_el, b_scales,
                          bk):
    """Section 3 with accumulate='exact', written out in Fractions."""
    M, K = a_codes.shape
    N = b_codes.shape[1]
    a_scales = [[F(float(v)) for v in r] for r in np.asarray(a_scales)]
    b_scales = [[F(float(v)) for v in r] for r in np.asarray(b_scales)]
    out = np.empty((M, N), np.float32)
    for i in range(M):
        for j in range(N):
            acc = F(0)
            for b in range(K // bk):
                p = R32(sum(a_el.value(a_codes[i, k]) * b_el.value(
                    b_codes[k, j]) for k in range(b * bk, (b + 1) * bk)))
                s = R32(a_scales[i][b] * b_scales[b][j])
                acc = R32(acc + R32(p * s))
            out[i, j] = float(acc)
    return out


def _scale_values(scales):
    return np.asarray(scales).astype(np.float64)


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp4",
                                    "mxfp6_e2m3", "nvfp4", "fp8_1x128"])
@pytest.mark.parametrize("accumulate", ["exact", "fp32"])
def test_scaled_matmul_on_block_tensors(recipe, accumulate):
    el_name, blk, sfmt, _ = RECIPES[recipe]
    rng = np.random.default_rng(21)
    M, N, K = 5, 4, 2 * blk
    a = (rng.normal(size=(M, K)) * np.exp2(rng.integers(-6, 6, (M, 1))))
    b = (rng.normal(size=(K, N)) * np.exp2(rng.integers(-6, 6, (1, N))))
    a, b = a.astype(np.float32), b.astype(np.float32)
    bt_a = lp.quantize_blocks(a, recipe)              # along K (last axis)
    bt_b = lp.quantize_blocks(b, recipe, axis=0)      # along K (axis 0)
    got = lp.scaled_matmul(bt_a, bt_b, accumulate=accumulate)
    fmt_name = ELEMENTS[el_name].name
    # e4m3 block scales given as their float32 values (exact)
    sa = bt_a.scales if sfmt == "e8m0" else \
        np.asarray(bt_a.scales).astype(np.float32)
    sb = bt_b.scales if sfmt == "e8m0" else \
        np.asarray(bt_b.scales).astype(np.float32)
    hand = lp.scaled_matmul(code_ints(bt_a.codes).astype(np.uint8),
                            code_ints(bt_b.codes).astype(np.uint8),
                            a_format=fmt_name,
                            b_format=fmt_name, a_scale=sa, b_scale=sb,
                            block=(blk,), accumulate=accumulate)
    if recipe == "nvfp4":
        ts = np.float32(bt_a.tensor_scale) * np.float32(bt_b.tensor_scale)
        hand = (hand.astype(np.float32) * ts).astype(np.float32)
    np.testing.assert_array_equal(got, hand)
    if accumulate == "exact":
        el = ELEMENTS[el_name]
        want = _exact_blocked_matmul(
            code_ints(bt_a.codes), el,
            _scale_values(bt_a.scales),
            code_ints(bt_b.codes), el,
            _scale_values(bt_b.scales),
            blk)
        if recipe == "nvfp4":
            t = R32(F(float(bt_a.tensor_scale)) * F(float(bt_b.tensor_scale)))
            want = np.array([[float(R32(F(float(v)) * t)) for v in r]
                             for r in want], np.float32)
        np.testing.assert_array_equal(got, want)


def test_scaled_matmul_mxint8():
    rng = np.random.default_rng(22)
    a = rng.normal(size=(3, 64)).astype(np.float32)
    b = rng.normal(size=(64, 2)).astype(np.float32)
    bt_a = lp.quantize_blocks(a, "mxint8")
    bt_b = lp.quantize_blocks(b, "mxint8", axis=0)
    got = lp.scaled_matmul(bt_a, bt_b, accumulate="exact")
    el = ELEMENTS["mxint8"]
    want = _exact_blocked_matmul(
        code_ints(bt_a.codes), el,
        _scale_values(bt_a.scales),
        code_ints(bt_b.codes), el,
        _scale_values(bt_b.scales), 32)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# properties (Hypothesis)
# ---------------------------------------------------------------------------

E8M0_ELEMENTS = {r: RECIPES[r][0] for r in E8M0_RECIPES}


@st.composite
def e8m0_blocks(draw, recipe, n=32, kmin=-100, kmax=100):
    """One block of float32 values near the element's rounding boundaries,
    scaled by a drawn 2^k (so the block amax spans a wide range)."""
    el = E8M0_ELEMENTS[recipe]
    el_fmt = "int8" if el == "mxint8" else el
    vals = draw(st.lists(lpt.boundary_floats(el_fmt, np.float64,
                                             allow_infinity=False),
                         min_size=n, max_size=n))
    k = draw(st.integers(kmin, kmax))
    x = np.array(vals, np.float64) * (2.0 ** k)
    if el == "mxint8":
        x = x / 64
    x = x.astype(np.float32)
    assume(np.all(np.isfinite(x)) and np.any(x != 0))
    return x


def _exp(bt):
    return _scale_bits(bt.scales, "e8m0").ravel() - 127


@pytest.mark.parametrize("recipe", E8M0_RECIPES)
@settings(max_examples=30)
@given(data=st.data())
def test_ceil_never_saturates(recipe, data):
    x = data.draw(e8m0_blocks(recipe))
    el = ELEMENTS[E8M0_ELEMENTS[recipe]]
    bt = lp.quantize_blocks(x, recipe, scale_rule="ceil")
    e = int(_exp(bt)[0])
    amax = max(abs(F(float(v))) for v in x)
    assume(-127 < e < 127)
    assert amax / F(2) ** e <= el.max
    # the codes are the rounding of x / X with no saturation at all
    X = F(2) ** e
    want = [el.encode(F(float(v)) / X, "nearest_even", saturate=False)
            if v != 0 else el.encode(float(v), "nearest_even") for v in x]
    assert code_ints(bt.codes).tolist() == want


@pytest.mark.parametrize("recipe", E8M0_RECIPES)
@settings(max_examples=30)
@given(data=st.data())
def test_floor_lands_in_top_binade_or_saturates(recipe, data):
    x = data.draw(e8m0_blocks(recipe))
    el = ELEMENTS[E8M0_ELEMENTS[recipe]]
    bt = lp.quantize_blocks(x, recipe)
    e = int(_exp(bt)[0])
    assume(-127 < e < 127)
    i = int(np.argmax(np.abs(x)))
    amax = abs(F(float(x[i])))
    scaled = amax / F(2) ** e
    assert F(2) ** el.emax <= scaled < F(2) ** (el.emax + 1)
    code = int(code_ints(bt.codes)[i])
    v = el.value(code)
    if scaled > el.max:                   # saturates to +-max
        assert abs(v) == el.max
    assert abs(v) <= el.max


@pytest.mark.parametrize("rule", RULES["e8m0"])
@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp4", "mxint8",
                                    "mxfp6_e3m2"])
@settings(max_examples=15)
@given(data=st.data())
def test_scaling_by_2k_shifts_the_scale(recipe, rule, data):
    x = data.draw(e8m0_blocks(recipe, n=64, kmin=-60, kmax=60))
    k = data.draw(st.integers(-50, 50))
    y = (x.astype(np.float64) * 2.0 ** k).astype(np.float32)
    # exact in float32 both ways (no overflow, no subnormal rounding)
    assume(np.all(np.isfinite(y)))
    assume(np.array_equal(y.astype(np.float64) / 2.0 ** k,
                          x.astype(np.float64)))
    nz = x[x != 0]
    assume(np.all(np.abs(nz) >= 2.0 ** -126)
           and np.all(np.abs(y[x != 0]) >= 2.0 ** -126))
    a = lp.quantize_blocks(x, recipe, scale_rule=rule)
    b = lp.quantize_blocks(y, recipe, scale_rule=rule)
    ea, eb = _exp(a), _exp(b)
    # away from the clamp, and from float32 subnormal ratios (rceil rounds
    # amax / max in float32, exact under 2^k only among normals)
    inside = (ea > -120) & (ea < 120) & (ea + k > -120) & (ea + k < 120)
    assume(inside.all())
    np.testing.assert_array_equal(eb, ea + k)
    np.testing.assert_array_equal(code_ints(a.codes), code_ints(b.codes))


@settings(max_examples=40)
@given(seed=st.integers(0, 2**64 - 1), e=st.integers(-40, 40),
       rows=st.integers(1, 4), data=st.data())
def test_stochastic_bits_do_not_depend_on_blocking(seed, e, rows, data):
    # every value in [2^e, 2^(e+1)) with each 8-block holding one value in
    # that binade's top: all floor scales agree whatever the blocking, so the
    # element codes must agree too (stochastic rounding keys on x's flat
    # index), and equal lp.encode of the exact x / X
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = (rng.uniform(1, 2, (rows * 8, 64)) * 2.0 ** e).astype(np.float32)
    x *= np.where(rng.random(x.shape) < 0.5, -1, 1).astype(np.float32)
    X = 2.0 ** (e - 8)                       # mxfp8_e4m3: emax 8
    want = lp.encode(x.astype(np.float64) / X, "e4m3", rounding="stochastic",
                     seed=seed, saturate=True)
    for kw in ({}, {"block": 8}, {"block": 64}, {"axis": 0},
               {"axis": 0, "block": 16}, {"block": (8, 8)}):
        bt = lp.quantize_blocks(x, "mxfp8_e4m3", rounding="stochastic",
                                seed=seed, **kw)
        assert (_exp(bt) == e - 8).all()
        np.testing.assert_array_equal(code_ints(bt.codes), want)


@settings(max_examples=60)
@given(T=st.floats(1e-30, 1e30), data=st.data())
def test_nvfp4_tensor_amax_against_reference(T, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = (rng.normal(size=(2, 32)) * T / 4).astype(np.float32)
    T32 = float(np.float32(T))
    bt = lp.quantize_blocks(x, "nvfp4", tensor_amax=T32)
    assert_matches(bt, ref_quantize_blocks(x, "nvfp4", tensor_amax=T32), x)


# ---------------------------------------------------------------------------
# bad parameters
# ---------------------------------------------------------------------------

X2 = np.ones((4, 64), np.float32)


@pytest.mark.parametrize("block", [0, -1, (0, 4), (4, 0)])
def test_bad_block(block):
    with pytest.raises(ValueError, match="block"):
        lp.quantize_blocks(X2, "mxfp4", block=block)


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_bad_axis(axis):
    with pytest.raises(ValueError, match="axis"):
        lp.quantize_blocks(X2, "mxfp4", axis=axis)


@pytest.mark.parametrize("recipe", ["fp8_1x128", "fp8_128x128"])
@pytest.mark.parametrize("rule", ["ceil", "floor", "rceil", "even", "nvfp4"])
def test_rule_the_scale_format_lacks(recipe, rule):
    with pytest.raises(ValueError, match="scale_rule"):
        lp.quantize_blocks(X2, recipe, scale_rule=rule)


@pytest.mark.parametrize("rule", ["decode", "encode", "pow2", "bogus"])
def test_e8m0_rule_unknown(rule):
    with pytest.raises(ValueError, match="scale_rule"):
        lp.quantize_blocks(X2, "mxfp4", scale_rule=rule)


def test_e8m0_element_rejected():
    with pytest.raises(ValueError, match="element"):
        lp.BlockFormat("float8_e8m0fnu", 32, "float8_e8m0fnu", "floor")


@pytest.mark.parametrize("t", [np.nan, np.inf, -np.inf, -1.0, -1e-30])
def test_bad_tensor_amax(t):
    with pytest.raises(ValueError, match="tensor_amax"):
        lp.quantize_blocks(X2, "nvfp4", tensor_amax=t)


def test_float32_scale_with_ceil_via_scale_format():
    with pytest.raises(ValueError, match="scale_rule"):
        lp.quantize_blocks(X2, "mxfp4", scale_format="float32",
                           scale_rule="ceil")


def test_integer_input_follows_encode():
    xi = np.arange(-40, 24).reshape(2, 32)
    bt = lp.quantize_blocks(xi, "mxfp8_e4m3")
    assert_matches(bt, ref_quantize_blocks(xi.astype(np.float64),
                                           "mxfp8_e4m3"), xi)
    with pytest.raises(TypeError):
        lp.quantize_blocks(np.ones(32, np.complex64), "mxfp4")
