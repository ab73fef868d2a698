"""The exact block-scaling reference (tests/block_reference.py) on its own.

These tests always run, with or without lp.quantize_blocks: hand-computed
cases from the OCP MX v1.0 rules and API.md section 8, and cross-checks of
the Fraction arithmetic against IEEE float32 arithmetic done by NumPy and
against the established lp.encode (power-of-two scales divide exactly).
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import lowprec as lp
from block_reference import (ELEMENTS, R32, RECIPES, Unspecified,
                             e8m0_exponent, f32_bits, ref_dequantize,
                             ref_quantize_blocks, round_half_away_to_bits)

F = Fraction
FMAX32 = F(float(np.finfo(np.float32).max))
MIN_SUB32 = F(2) ** -149


# --- e8m0 rules, by hand -------------------------------------------------

@pytest.mark.parametrize("amax, rule, exp", [
    # MXFP4 (e2m1: max 6 = 1.1b x 2^2, emax 2)
    (6, "floor", 0), (6, "ceil", 0), (6, "rceil", 0), (6, "even", 0),
    (7, "floor", 0),          # 7 >= 2^2: X = 2^0, 7 then saturates to 6
    (7, "ceil", 1),           # ceil(log2(7/6)) = 1
    (7, "rceil", 1),          # R32(7/6) = 1.1666..: next power of two 2
    (7, "even", 1),           # 7 = 1.11b x 2^2 -> 1 bit, away: 8 = 2^3
    (4, "floor", 0), (4, "ceil", 0), (4, "even", 0),
    (F(13, 2), "floor", 0),   # 6.5 = 1.101b x 2^2 -> even: 1.1b, no carry
    (F(13, 2), "even", 0),
    (F(1, 4), "floor", -4), (F(1, 4), "ceil", -4),
    (3, "floor", -1), (3, "ceil", -1), (F(31, 10), "ceil", 0),
    (0, "floor", -127), (0, "ceil", -127), (0, "even", -127),
])
def test_e8m0_mxfp4_by_hand(amax, rule, exp):
    assert e8m0_exponent(F(amax), rule, "float4_e2m1fn") == exp


@pytest.mark.parametrize("element, amax, rule, exp", [
    ("float8_e4m3fn", 448, "floor", 0), ("float8_e4m3fn", 448, "ceil", 0),
    ("float8_e4m3fn", 480, "floor", 0), ("float8_e4m3fn", 480, "ceil", 1),
    ("float8_e4m3fn", 480, "even", 0),     # 1.111b x 2^8: already 3 bits
    ("float8_e4m3fn", 496, "even", 1),     # 1.1111b -> half away -> 2^9
    ("float8_e4m3fn", 495, "even", 0),
    ("float8_e4m3fn", 256, "floor", 0), ("float8_e4m3fn", 255, "floor", -1),
    ("float8_e5m2", 57344, "floor", 0), ("float8_e5m2", 61440, "even", 1),
    ("float8_e5m2", 61439, "even", 0), ("float8_e5m2", 57345, "ceil", 1),
    ("float6_e3m2fn", 28, "floor", 0), ("float6_e3m2fn", 30, "even", 1),
    ("float6_e2m3fn", F(15, 2), "floor", 0),
    ("float6_e2m3fn", F(31, 4), "even", 1),
    ("mxint8", 1, "floor", 0), ("mxint8", F(127, 64), "ceil", 0),
    ("mxint8", 2, "ceil", 1), ("mxint8", F(255, 128), "even", 1),
    ("mxint8", F(253, 128), "even", 0),
])
def test_e8m0_rules_by_hand(element, amax, rule, exp):
    assert e8m0_exponent(F(amax), rule, element) == exp


@pytest.mark.parametrize("element", sorted(ELEMENTS))
def test_e8m0_exponent_clamp(element):
    el = ELEMENTS[element]
    # float32 extremes (and float64 beyond them) hit the clamp [-127, 127]
    assert e8m0_exponent(MIN_SUB32, "floor", el) == -127
    assert e8m0_exponent(MIN_SUB32, "ceil", el) == -127
    assert e8m0_exponent(MIN_SUB32, "rceil", el) == -127
    assert e8m0_exponent(F(2) ** -1000, "even", el) == -127
    assert e8m0_exponent(F(2) ** 1000, "floor", el) == 127
    assert e8m0_exponent(F(2) ** 1000, "ceil", el) == 127
    assert e8m0_exponent(FMAX32, "floor", el) == 127 - el.emax
    assert e8m0_exponent(FMAX32, "ceil", el) == min(
        127, math.ceil(math.log2(float(FMAX32 / el.max))))


def test_rceil_differs_from_ceil_only_within_a_float32_ulp():
    # amax / max = 1 + 2^-30: R32 gives 1 (a power of two) -> rceil 2^0,
    # ceil 2^1; at 1 + 2^-24 (a tie) R32 goes to even 1; just above, to
    # 1 + 2^-23
    e4m3 = "float8_e4m3fn"
    for eps, rceil in ((F(1, 2**30), 0), (F(1, 2**24), 0),
                       (F(1, 2**24) + F(1, 2**45), 1), (F(1, 2**22), 1)):
        amax = 448 * (1 + eps)
        assert e8m0_exponent(amax, "ceil", e4m3) == 1
        assert e8m0_exponent(amax, "rceil", e4m3) == rceil
    # float32 amaxes: the next float above max * 2^k already gives a ratio
    # above 1 + 2^-24, so rceil == ceil there
    nxt = F(float(np.nextafter(np.float32(448), np.float32(1e9))))
    assert e8m0_exponent(nxt, "rceil", e4m3) == 1


def test_mxint8_even_clamps_at_float32_max():
    # 2^128 - 2^104 rounded to 6 bits carries to 2^128 -> 128 -> clamp 127
    assert e8m0_exponent(FMAX32, "even", "mxint8") == 127
    assert e8m0_exponent(FMAX32, "floor", "mxint8") == 127


def test_round_half_away():
    assert round_half_away_to_bits(F(7), 1) == 8
    assert round_half_away_to_bits(F(5), 1) == 6     # 1.01b: half, away
    assert round_half_away_to_bits(F(9, 2), 1) == 4
    assert round_half_away_to_bits(F(496), 3) == 512


def test_e8m0_floor_matches_frexp():
    rng = np.random.default_rng(0)
    x = np.ldexp(rng.uniform(1, 2, 2000), rng.integers(-140, 127, 2000))
    x = x.astype(np.float32)
    for el in ("float8_e4m3fn", "float4_e2m1fn", "mxint8"):
        emax = ELEMENTS[el].emax
        for v in x[:300]:
            exp = int(np.frexp(np.float64(v))[1]) - 1 - emax
            assert e8m0_exponent(F(float(v)), "floor", el) == \
                min(max(exp, -127), 127)


def test_rceil_matches_float32_division():
    rng = np.random.default_rng(1)
    x = np.ldexp(rng.uniform(1, 2, 400), rng.integers(-120, 120, 400))
    x = x.astype(np.float32)
    for el in ("float8_e4m3fn", "float4_e2m1fn", "float6_e3m2fn"):
        m = np.float32(float(ELEMENTS[el].max))
        for v in x:
            r = np.float32(v) / m                  # IEEE float32 division
            mant, e = np.frexp(np.float64(r))
            exp = e - 1 if mant == 0.5 else e
            assert e8m0_exponent(F(float(v)), "rceil", el) == \
                min(max(int(exp), -127), 127)


# --- whole blocks by hand ------------------------------------------------

def test_mxfp4_blocks_by_hand():
    x = np.zeros((3, 32), np.float32)
    x[0, :4] = [6.0, 1.0, 0.5, -2.0]
    x[1, :3] = [7.0, 0.25, -3.5]
    floor = ref_quantize_blocks(x, "mxfp4")
    assert floor.scale_codes.ravel().tolist() == [127, 127, 0]  # zero block
    assert floor.codes[0, :4].tolist() == [0x7, 0x2, 0x1, 0xC]
    # 7 saturates to 6 = 0x7; 0.25 is half-way 0/0.5 -> 0; -3.5 ties 3/4
    # -> even 4 = 0b110 -> 0xE
    assert floor.codes[1, :3].tolist() == [0x7, 0x0, 0xE]
    assert np.all(floor.codes[2] == 0)
    ceil = ref_quantize_blocks(x, "mxfp4", scale_rule="ceil")
    assert ceil.scale_codes.ravel().tolist() == [127, 128, 0]
    # 7/2 = 3.5 -> 4 (0x6); 0.125 -> 0; -1.75 ties 1.5/2 -> even -2 (0xC)
    assert ceil.codes[1, :3].tolist() == [0x6, 0x0, 0xC]
    deq = ref_dequantize(ceil)
    assert deq[1, :3].tolist() == [8.0, 0.0, -4.0]


def test_mxfp8_scale_and_element_by_hand():
    x = np.array([[1000.0, -3.0] + [0.0] * 30])      # 1000 = 1.95 x 2^9
    rb = ref_quantize_blocks(x, "mxfp8_e4m3")
    assert rb.scale_codes.ravel().tolist() == [127 + 1]   # 2^(9-8)
    assert ref_dequantize(rb)[0, :2].tolist() == [448.0 * 2, -3.0]


def test_mxint8_by_hand():
    x = np.array([[1.0, -2.0, 0.75, 1 / 128] + [0.0] * 28])
    rb = ref_quantize_blocks(x, "mxint8")
    # amax 2 = 2^1, emax 0 -> X = 2; q = round(64 x / 2), clamp +-127
    assert rb.scale_codes.ravel().tolist() == [128]
    assert rb.codes[0, :4].tolist() == [32, -32 * 2, 24, 0]  # 1/256*64: 0.25
    x[0, 1] = -1.999
    rb = ref_quantize_blocks(x, "mxint8")
    assert rb.scale_codes.ravel().tolist() == [127]
    assert rb.codes[0, 1] == -127                   # saturates to -max


def test_nan_and_partial_blocks():
    x = np.arange(1, 71, dtype=np.float32).reshape(1, 70)
    x[0, 40] = np.nan
    rb = ref_quantize_blocks(x, "mxfp8_e4m3")
    assert rb.scale_shape == (1, 3)
    assert rb.scale_codes.ravel().tolist() == [127 + 5 - 8, 0xFF, 127 + 6 - 8]
    assert np.all(rb.codes[0, 32:64] == 0)
    d = ref_dequantize(rb)
    assert np.all(np.isnan(d[0, 32:64])) and not np.isnan(d[0, 64:]).any()
    # the partial block (65..70) takes its own amax 70 = 1.09 x 2^6: X = 2^-2,
    # 70 / X = 280 -> e4m3 288 (quantum 32 above 256) -> 72; 65 -> 64
    assert d[0, 69] == 72.0 and d[0, 64] == 64.0


def test_geometry_axis0_and_2d():
    x = np.arange(70 * 3, dtype=np.float64).reshape(70, 3)
    rb = ref_quantize_blocks(x, "mxfp4", axis=0)
    assert rb.scale_shape == (3, 3)
    x = np.ones((2, 10, 9))
    rb = ref_quantize_blocks(x, "fp8_128x128", block=(4, 4))
    assert rb.scale_shape == (2, 3, 3)
    assert len(rb.scale_values) == 18


# --- float32 and nvfp4 chains against NumPy float32 arithmetic --------------

def _np_nvfp4(block, T):
    f32 = np.float32
    S = f32(2688) / f32(T) if T != 0 else f32(1)
    if S == 0 or not np.isfinite(S):
        S = f32(1)
    amax = f32(np.max(np.abs(block)))
    s = lp.encode(np.array([amax * (S * (f32(1) / f32(6)))], np.float32),
                  "e4m3", saturate=True)[0]
    sv = lp.decode(np.array([s], np.uint8), "e4m3")[0]
    ts = f32(1) / S
    if sv == 0:                                   # signed zeros
        return s, ts, np.where(np.signbit(block), 0x8, 0x0)
    fct = f32(1) / (f32(sv) * ts)
    codes = lp.encode(np.asarray(block, np.float32) * fct, "e2m1",
                      saturate=True)
    return s, ts, codes


def test_nvfp4_matches_float32_arithmetic():
    rng = np.random.default_rng(2)
    for trial in range(20):
        x = (rng.normal(size=(4, 32)) *
             np.exp2(rng.integers(-30, 30, (4, 1)))).astype(np.float32)
        rb = ref_quantize_blocks(x, "nvfp4")
        T = np.max(np.abs(x))
        assert rb.tensor_scale == F(float(np.float32(1) / (np.float32(2688) / T)))
        for i in range(4):
            for j in range(2):
                blk = x[i, 16 * j:16 * j + 16]
                s, ts, codes = _np_nvfp4(blk, T)
                assert rb.scale_codes[i, j] == s
                assert rb.codes[i, 16 * j:16 * j + 16].tolist() == \
                    codes.tolist()


def test_nvfp4_tensor_amax_and_zero():
    x = np.full((1, 16), 3.0, np.float32)
    rb = ref_quantize_blocks(x, "nvfp4", tensor_amax=0.0)   # S = 1
    assert rb.tensor_scale == 1
    # s = e4m3(R32(3 * R32(1/6))) = e4m3(0.5) -> f = 2 -> 6 (0x7)
    assert rb.scale_codes.ravel().tolist() == [0x30]
    assert np.all(rb.codes == 0x7)
    x = np.array([[1e-30] * 8 + [-1e-30] * 8], np.float32)
    rb = ref_quantize_blocks(x, "nvfp4", tensor_amax=1e6)
    assert rb.scale_codes.ravel().tolist() == [0]     # s = 0: signed zeros
    assert rb.codes.ravel().tolist() == [0] * 8 + [0x8] * 8


@pytest.mark.parametrize("rule", ["decode", "encode", "pow2"])
def test_float32_rules_match_float32_arithmetic(rule):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(6, 128)) *
         np.exp2(rng.integers(-40, 40, (6, 1)))).astype(np.float32)
    x[5] = 0
    rb = ref_quantize_blocks(x, "fp8_1x128", scale_rule=rule)
    f32 = np.float32
    for i in range(6):
        amax = f32(np.max(np.abs(x[i])))
        if amax == 0:
            s, y = f32(1), x[i]
        elif rule == "decode":
            s = amax / f32(448)
            y = x[i] / s
        elif rule == "encode":
            e = f32(448) / amax
            s, y = f32(1) / e, x[i] * e
        else:
            e = f32(2.0 ** math.floor(math.log2(448 / float(amax))))
            s, y = f32(1) / e, x[i] * e
        assert rb.scale_codes[i, 0] == np.array(s, np.float32).view(np.uint32)
        assert rb.codes[i].tolist() == lp.encode(y, "e4m3",
                                                 saturate=True).tolist()


def test_float32_rules_refuse_what_api_leaves_open():
    x = np.full((1, 128), 2.0 ** -149, np.float64)
    with pytest.raises(Unspecified):
        ref_quantize_blocks(x, "fp8_1x128")            # s underflows to 0
    with pytest.raises(Unspecified):
        ref_quantize_blocks(x, "fp8_1x128", scale_rule="encode")


# --- e8m0 elements against the established lp.encode ----------------------

@pytest.mark.parametrize("recipe", [r for r in RECIPES
                                    if RECIPES[r][2] == "e8m0"])
@pytest.mark.parametrize("rule", ["floor", "ceil", "rceil", "even"])
def test_e8m0_elements_match_encode(recipe, rule):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 32)) * np.exp2(rng.integers(-60, 60, (8, 1)))
    rb = ref_quantize_blocks(x, recipe, scale_rule=rule)
    el = ELEMENTS[RECIPES[recipe][0]]
    X = np.exp2(rb.scale_codes.astype(np.float64) - 127)   # exact, float64
    want = lp.encode(x / X, el.name, saturate=True,
                     scale=None if not el.is_int else 1 / 64)
    if el.is_int:
        want = np.clip(want.astype(np.int64), -127, 127)
    assert rb.codes.tolist() == want.astype(np.int64).tolist()


def test_stochastic_keys_on_flat_index():
    rng = np.random.default_rng(5)
    x = rng.uniform(1, 2, (2, 64))
    rb = ref_quantize_blocks(x, "mxfp8_e5m2", rounding="stochastic", seed=9)
    # all blocks have amax in [1, 2): X = 2^-15, so x / X = x * 2^15
    want = lp.encode(x * 2.0 ** 15, "e5m2", rounding="stochastic", seed=9,
                     saturate=True)
    assert rb.codes.tolist() == want.astype(np.int64).tolist()


def test_dequantize_rounds_once():
    # amax 1.5 x 2^-125: X = 2^(-125 - 2) = 2^-127; the elements 6 and 2
    # times X are float32 subnormals, exact in both dtypes
    x = np.zeros((1, 32))
    x[0, :2] = [1.5 * 2.0 ** -125, 0.5 * 2.0 ** -125]
    rb = ref_quantize_blocks(x, "mxfp4")
    assert rb.scale_codes.ravel().tolist() == [0]        # 2^-127
    d32 = ref_dequantize(rb, np.float32)
    d64 = ref_dequantize(rb, np.float64)
    assert d64[0, 0] == 6 * 2.0 ** -127 and d64[0, 1] == 2 * 2.0 ** -127
    assert d32[0, 0] == np.float32(6 * 2.0 ** -127)
    assert f32_bits(F(3, 2) * F(2) ** -149) == 2          # RNE tie: even 2
    assert R32(F(1, 3)) == F(float(np.float32(1 / 3)))
