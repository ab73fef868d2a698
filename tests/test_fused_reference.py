"""The exact reference of tests/fused_reference.py reproduces every shipped
H100 record bit for bit, and each rule it encodes is decided by them.

The records are read from $LOWPREC_H100_DATA (default
<repo>/../shared/h100); every test here skips when they are absent.
Expected values are the recorded hardware bits, never values computed by
lowprec.
"""
import math
import os
from fractions import Fraction

import numpy as np
import pytest

import fused_reference as fr

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("LOWPREC_H100_DATA",
                      os.path.join(HERE, "..", "..", "shared", "h100"))


def _load(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"H100 records not found at {path} (set "
                    "LOWPREC_H100_DATA)")
    return np.load(path)


MMA_VARIANTS = [
    "mma_m16n8k32_e4m3_e4m3_f32", "mma_m16n8k32_e5m2_e5m2_f32",
    "mma_m16n8k32_e4m3_e5m2_f32", "mma_m16n8k32_e5m2_e4m3_f32",
    "mma_m16n8k32_e4m3_e4m3_f16", "mma_m16n8k16_f16_f16_f32",
    "mma_m16n8k16_bf16_bf16_f32", "mma_m16n8k16_f16_f16_f16",
]
WGMMA_VARIANTS = [
    "wgmma_m64n8k32_e4m3_e4m3_f32", "wgmma_m64n8k32_e5m2_e5m2_f32",
    "wgmma_m64n8k32_e4m3_e5m2_f32", "wgmma_m64n8k32_e4m3_e4m3_f16",
    "wgmma_m64n8k16_f16_f16_f32", "wgmma_m64n8k16_bf16_bf16_f32",
]
VARIANTS = MMA_VARIANTS + WGMMA_VARIANTS


def _records(variant):
    z = _load("mma_sync_records.npz" if variant.startswith("mma_")
              else "wgmma_records.npz")
    a_fmt, b_fmt, acc, fn = fr.record_variant(variant)
    A = fr.decode(z[variant + "__a"], a_fmt)
    B = fr.decode(z[variant + "__b"], b_fmt)
    C = fr.bits_to_values(z[variant + "__c"], fr.ACC[acc])
    return dict(A=A, B=B, C=C, d=z[variant + "__d"],
                dist=z[variant + "__dist"], names=z["dist_names"],
                a_fmt=a_fmt, b_fmt=b_fmt, acc=acc, fn=fn)


def _mismatches(got, r):
    return int(np.count_nonzero(got != r["d"]))


# -- every instruction record ------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_reference_reproduces_every_record(variant):
    r = _records(variant)
    got = fr.values_to_bits(r["fn"](r["A"], r["B"], r["C"]), fr.ACC[r["acc"]])
    bad = got != r["d"]
    per_dist = {str(r["names"][i]): int(n) for i, n in
                enumerate(np.bincount(r["dist"][bad], minlength=7)) if n}
    assert not bad.any(), (f"{variant}: {bad.sum()} of {bad.size} records "
                           f"differ, by distribution {per_dist}")
    assert bad.size >= 4096


@pytest.mark.parametrize("variant", VARIANTS)
def test_fraction_definition_reproduces_records(variant):
    """The one-element Fraction form (the definition) on every 29th record
    and on every record of the 'special' distribution (NaN, inf, zeros,
    subnormals), against the hardware bits."""
    r = _records(variant)
    special = int(np.flatnonzero(r["names"] == "special")[0])
    rows = np.union1d(np.arange(0, len(r["d"]), 29),
                      np.flatnonzero(r["dist"] == special)[:300])
    acc = fr.ACC[r["acc"]]
    bad = [i for i in rows
           if fr.to_bits(r["fn"](r["A"][i], r["B"][i], r["C"][i],
                                 exact=True), acc) != int(r["d"][i])]
    assert not bad, f"{variant}: records {bad[:10]} differ"
    assert len(rows) > 300


# -- each rule is decided by the records -------------------------------------

def _instr(variant):
    a_fmt = variant.split("_")[2]
    fp8 = a_fmt in ("e4m3", "e5m2")
    return fr.INSTRUCTIONS[("qgmma_" if fp8 else "hmma_")
                           + variant.split("_")[-1]]


def _perturbed(instr, what):
    g, f, p, rnd, acc = (instr.group, instr.align_bits, instr.out_bits,
                         instr.out_rounding, instr.acc)
    other = {"toward_zero": "nearest_even",
             "nearest_even": "toward_zero"}[rnd]
    return {"F-1": fr.Instr(g, f - 1, p, rnd, acc),
            "F+1": fr.Instr(g, f + 1, p, rnd, acc),
            "p-1": fr.Instr(g, f, p - 1, rnd, acc),
            "p+1": fr.Instr(g, f, p + 1, rnd, acc),
            "rounding": fr.Instr(g, f, p, other, acc),
            "group/2": fr.Instr(g // 2, f, p, rnd, acc)}[what]


NATIVE = [v for v in VARIANTS if not (v.startswith("mma_") and "k32" in v)]
PERTURB = [(v, w) for v in NATIVE
           for w in ("F-1", "F+1", "p-1", "p+1", "rounding", "group/2")
           if not (w == "p+1" and _instr(v).out_bits in (24, 11))]


@pytest.mark.parametrize("variant,what", PERTURB)
def test_each_parameter_is_decided(variant, what):
    """F, p, the rounding and the group of every native instruction: one
    step off gives mismatches (so the table is not one of many fits)."""
    r = _records(variant)
    ins = _perturbed(_instr(variant), what)
    got = fr._dot(ins, r["A"], r["B"], r["C"], r["a_fmt"], r["b_fmt"])
    assert _mismatches(fr.values_to_bits(got, fr.ACC[r["acc"]]), r) > 0


DECIDED_ALTERNATIVES = [
    # toward-zero overflow is inf (bf16 products reach 2^256)
    ("mma_m16n8k16_bf16_bf16_f32", "overflow"),
    ("wgmma_m64n8k16_bf16_bf16_f32", "overflow"),
    ("mma_m16n8k16_f16_f16_f16", "overflow"),
    ("wgmma_m64n8k32_e4m3_e4m3_f16", "overflow"),
    # subnormal f16 results are kept
    ("mma_m16n8k16_f16_f16_f16", "subnormals"),
] + [(v, "zero_c") for v in NATIVE]    # c = -0, zero products: +0


@pytest.mark.parametrize("variant,alt", DECIDED_ALTERNATIVES)
def test_rule_alternatives_are_ruled_out(variant, alt):
    r = _records(variant)
    got = fr._dot(_instr(variant), r["A"], r["B"], r["C"], r["a_fmt"],
                  r["b_fmt"], alt={alt: fr.ALTERNATIVES[alt]})
    assert _mismatches(fr.values_to_bits(got, fr.ACC[r["acc"]]), r) > 0


FP8_MMA = [v for v in MMA_VARIANTS if "k32" in v]


FP8_STRUCTURES = [(v, s) for v in FP8_MMA
                  for s in ("one_step", "c_in_step", "halves", "inner_f32",
                            "qgmma")
                  if not (s == "inner_f32" and v.endswith("_f32"))]


@pytest.mark.parametrize("variant,structure", FP8_STRUCTURES)
def test_fp8_mma_sync_structure_is_decided(variant, structure):
    """The two k mod 4 HMMA steps and the separate RNE addition of c: one
    step, c inside the steps, k halves, f32 inner steps for the f16
    accumulator, or a native QGMMA (as wgmma) all mismatch records."""
    r = _records(variant)
    if structure == "qgmma":
        got = fr._dot(fr.INSTRUCTIONS["qgmma_" + r["acc"]], r["A"], r["B"],
                      r["C"], r["a_fmt"], r["b_fmt"])
    else:
        got = fr.fp8_mma_sync(r["A"], r["B"], r["C"], r["acc"],
                              structure=structure)
    assert _mismatches(fr.values_to_bits(got, fr.ACC[r["acc"]]), r) > 0


@pytest.mark.parametrize("variant", [v for v in VARIANTS
                                     if "k32" in v or "f16_f16_f32" in v])
def test_reference_is_not_float32_fma_chain(variant):
    """Sequential fma(a_k, b_k, d) from c in the accumulator format (what a
    CPU does) mismatches the hardware on some records.  (fp8 and f16
    products are exact float32/f16-range values, so the float64 a*b + d
    rounded to float32 is a correctly rounded FMA: 53 >= 2*24 + 2.)"""
    r = _records(variant)
    acc = fr.ACC[r["acc"]]
    d = r["C"].copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(r["A"].shape[1]):
            d = (r["A"][:, k] * r["B"][:, k] + d).astype(np.float32) \
                .astype(np.float64)
        if acc.name == "f16":
            d = d.astype(np.float16).astype(np.float64)
    assert _mismatches(fr.values_to_bits(d, acc), r) > 100


# -- the rule on hand-computed cases ------------------------------------------

F32, F16 = fr.ACC["f32"], fr.ACC["f16"]


def test_truncation_hand_example():
    """1 + 2^-30 with F = 25: E = 0, 2^-30 is truncated to 0 -> exactly 1;
    1 + 3 * 2^-24 keeps all (a multiple of 2^-25) and rounds toward zero
    to 24 bits: 1 + 2^-23 (0x3f800001)."""
    e = fr.OPERANDS["f16"]
    one = 1.0
    assert fr.fused_step_exact([one, 2.0**-15], [one, 2.0**-15], 0.0,
                               a_fmt=e, b_fmt=e, acc=F32, align_bits=25,
                               out_bits=24, out_rounding="toward_zero") == 1
    v = fr.fused_step_exact([one, 3 * 2.0**-13], [one, 2.0**-11], 0.0,
                            a_fmt=e, b_fmt=e, acc=F32, align_bits=25,
                            out_bits=24, out_rounding="toward_zero")
    assert v == 1 + Fraction(1, 2**23)
    assert fr.to_bits(v, F32) == 0x3f800001


def test_truncation_toward_zero_of_negative_terms():
    """-2^-26 - 2^-26 next to 1 (F = 25): each term truncates to 0 (toward
    zero), although their exact sum -2^-25 is a multiple of 2^-25."""
    e = fr.OPERANDS["f16"]
    v = fr.fused_step_exact([1.0, -2.0**-13, -2.0**-13],
                            [1.0, 2.0**-13, 2.0**-13], 0.0, a_fmt=e,
                            b_fmt=e, acc=F32, align_bits=25, out_bits=24,
                            out_rounding="toward_zero")
    assert v == 1


def test_specials_hand_examples():
    e = fr.OPERANDS["e5m2"]
    step = dict(a_fmt=e, b_fmt=e, acc=F32, align_bits=13, out_bits=14,
                out_rounding="toward_zero")
    assert fr.fused_step_exact([math.inf], [0.0], 1.0, **step) is fr.NAN
    assert fr.fused_step_exact([math.inf, -math.inf], [1.0, 1.0], 0.0,
                               **step) is fr.NAN
    assert fr.fused_step_exact([1.0], [1.0], -math.inf, **step) is fr.NEG_INF
    assert fr.fused_step_exact([1.0], [-1.0], 1.0, **step) == 0
    assert fr.to_bits(fr.fused_step_exact([0.0], [1.0], -0.0, **step),
                      F32) == 0
    assert fr.to_bits(fr.NAN, F32) == 0x7fffffff
    assert fr.to_bits(fr.NAN, F16) == 0x7fff


def test_round_to_bits_hand_examples():
    # 14 bits toward zero: 1 + 2^-13 + 2^-14 -> 1 + 2^-13
    v = 1 + Fraction(1, 2**13) + Fraction(1, 2**14)
    assert fr.round_to_bits(v, 14, "toward_zero", F32) == \
        1 + Fraction(1, 2**13)
    # f16 nearest even at a tie: 1 + 2^-11 -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9
    assert fr.round_to_bits(1 + Fraction(1, 2**11), 11, "nearest_even",
                            F16) == 1
    assert fr.round_to_bits(1 + Fraction(3, 2**11), 11, "nearest_even",
                            F16) == 1 + Fraction(1, 2**9)
    # overflow: 65520 -> inf in f16 (nearest), 2^128 toward zero -> inf
    assert fr.round_to_bits(Fraction(65520), 11, "nearest_even",
                            F16) is fr.POS_INF
    assert fr.round_to_bits(-Fraction(2) ** 128, 24, "toward_zero",
                            F32) is fr.NEG_INF
    # subnormal: 3 * 2^-150 toward zero on the 2^-149 grid -> 2^-149
    assert fr.round_to_bits(Fraction(3, 2**150), 24, "toward_zero",
                            F32) == Fraction(1, 2**149)


# -- cuBLASLt GEMMs -----------------------------------------------------------

SMM = [(s, d) for s in ("s0", "s1", "s2") for d in ("d0", "d1")]


@pytest.fixture(scope="module")
def gemm():
    return _load("torch_gemm.npz")


@pytest.mark.parametrize("fast", [0, 1])
@pytest.mark.parametrize("shape,spread", SMM)
def test_scaled_mm_every_output(gemm, shape, spread, fast):
    p = f"smm_{shape}_{spread}__"
    if p + "A_codes" not in gemm.files:
        pytest.skip(f"{p} not in this half of the records")
    acc = fr.scaled_mm(gemm[p + "A_codes"], gemm[p + "B_codes"],
                       use_fast_accum=bool(fast))
    for scaling, sa, sb in (("tensor", "scale_a_tensor", "scale_b_tensor"),
                            ("rowwise", "scale_a_row", "scale_b_col")):
        for out in ("f32", "bf16"):
            got = fr.scaled_mm_epilogue(acc, gemm[p + sa], gemm[p + sb],
                                        scaling, out)
            want = gemm[p + f"out_{scaling}_{out}_fast{fast}"]
            assert np.count_nonzero(got != want) == 0, (scaling, out)


def test_scaled_mm_promotion_is_decided(gemm):
    """K = 1024: fast accumulation (one chain) and the 128-k promotion give
    different outputs, each reproducing only its own record."""
    p = "smm_s2_d0__"
    want0 = gemm[p + "out_tensor_f32_fast0"]
    want1 = gemm[p + "out_tensor_f32_fast1"]
    sa, sb = gemm[p + "scale_a_tensor"], gemm[p + "scale_b_tensor"]
    for fast, want, other in ((False, want0, want1), (True, want1, want0)):
        got = fr.scaled_mm_epilogue(
            fr.scaled_mm(gemm[p + "A_codes"], gemm[p + "B_codes"],
                         use_fast_accum=fast), sa, sb, "tensor", "f32")
        assert np.count_nonzero(got != want) == 0
        assert np.count_nonzero(got != other) > 0


def test_scaled_mm_epilogue_order_is_decided(gemm):
    """Rowwise scaling as R32(acc * sb[j]) * sa[i]; the other order
    R32(acc * sa[i]) * sb[j] and one product acc * R32(sa[i] * sb[j])
    mismatch."""
    p = "smm_s1_d1__"
    acc = fr.scaled_mm(gemm[p + "A_codes"], gemm[p + "B_codes"],
                       use_fast_accum=False)
    sa = gemm[p + "scale_a_row"].astype(np.float64)
    sb = gemm[p + "scale_b_col"].astype(np.float64)
    want = gemm[p + "out_rowwise_f32_fast0"]
    r32 = fr.round_f32
    for other in (r32(r32(acc * sa[:, None]) * sb[None, :]),
                  r32(acc * r32(sa[:, None] * sb[None, :]))):
        bits = fr.values_to_bits(other, F32)
        assert np.count_nonzero(bits != want) > 0


def test_scaled_mm_fraction_definition(gemm):
    """fused_dot_exact (Fractions) with promote_every=128 on 24 outputs of
    the K = 1024 case equals the vectorised accumulator."""
    p = "smm_s2_d0__"
    A, B = gemm[p + "A_codes"], gemm[p + "B_codes"]
    acc = fr.scaled_mm(A, B, use_fast_accum=False)
    e4m3 = fr.OPERANDS["e4m3"]
    rng = np.random.default_rng(9)
    for i, j in rng.integers(0, 64, size=(24, 2)):
        v = fr._dot(fr.INSTRUCTIONS["qgmma_f32"], fr.decode(A[i], e4m3),
                    fr.decode(B[j], e4m3), 0.0, e4m3, e4m3, exact=True,
                    promote_every=128)
        assert Fraction(float(acc[i, j])) == v


def test_fp16_matmul_small(gemm):
    """(64, 1024, 64): split_k = 1 reproduces every output; 2 and 3 do
    not.  The reduced-precision flag made no difference."""
    A, B = gemm["hmm_s0__A_f16"], gemm["hmm_s0__B_f16"]
    want = gemm["hmm_s0__out_reduced0"].ravel()
    assert np.array_equal(want, gemm["hmm_s0__out_reduced1"].ravel())
    assert np.count_nonzero(fr.fp16_matmul(A, B, split_k=1) != want) == 0
    for sk in (2, 3):
        assert np.count_nonzero(fr.fp16_matmul(A, B, split_k=sk)
                                != want) > 0


def test_fp16_matmul_large_subset(gemm):
    """(128, 4096, 128), split_k = 3 (slices 1408, 1408, 1280): a seeded
    sample of 1024 of the 16384 outputs (the whole matrix is slow)."""
    rows = np.random.default_rng(3).choice(128 * 128, 1024, replace=False)
    got = fr.fp16_matmul(gemm["hmm_s1__A_f16"], gemm["hmm_s1__B_f16"],
                         split_k=3, rows=rows)
    want = gemm["hmm_s1__out_reduced0"].ravel()[rows]
    assert np.count_nonzero(got != want) == 0


@pytest.mark.slow
def test_fp16_matmul_large_every_output(gemm):
    """All 16384 outputs: split_k = 3 reproduces every one, 1, 2 and 4
    do not (measured: 239, 137, 102 mismatches)."""
    A, B = gemm["hmm_s1__A_f16"], gemm["hmm_s1__B_f16"]
    want = gemm["hmm_s1__out_reduced0"].ravel()
    assert np.array_equal(want, gemm["hmm_s1__out_reduced1"].ravel())
    for sk in (1, 2, 3, 4):
        bad = np.count_nonzero(fr.fp16_matmul(A, B, split_k=sk) != want)
        assert (bad == 0) == (sk == 3), (sk, bad)


def test_int_mm_is_exact(gemm):
    A = gemm["intmm__A"].astype(object)
    B = gemm["intmm__B"].astype(object)
    want = gemm["intmm__C_int32"]
    got = np.array(A.dot(B), dtype=np.int64)    # Python-int products
    assert np.array_equal(got, want)


UNDECIDED = [(v, alt) for v in NATIVE
             for alt in ("subnormal_grid", "c_emin", "operand_emin",
                         "zero_sign")]


@pytest.mark.parametrize("variant,alt", UNDECIDED)
def test_choices_the_records_do_not_decide(variant, alt):
    """These alternatives reproduce every record too (so the reference's
    choice there rests on the README's rule, not on the records): kept as
    a test so that new records deciding one of them show up here."""
    r = _records(variant)
    got = fr._dot(_instr(variant), r["A"], r["B"], r["C"], r["a_fmt"],
                  r["b_fmt"], alt={alt: fr.ALTERNATIVES[alt]})
    assert _mismatches(fr.values_to_bits(got, fr.ACC[r["acc"]]), r) == 0


@pytest.mark.parametrize("variant", FP8_MMA)
def test_fp8_mma_sync_operand_emin_not_decided(variant):
    r = _records(variant)
    got = fr.fp8_mma_sync(r["A"], r["B"], r["C"], r["acc"],
                          structure="fp8_emin",
                          fp8_fmts=(r["a_fmt"], r["b_fmt"]))
    assert _mismatches(fr.values_to_bits(got, fr.ACC[r["acc"]]), r) == 0


def test_fused_matmul_is_the_scaled_mm_chain(gemm):
    """fused_matmul (the FusedAccumulator parameters) with QGMMA's
    (32, 13, 14 bits toward zero) and promote_every=128 is the _scaled_mm
    accumulator; from ml_dtypes arrays or from codes alike."""
    import ml_dtypes
    p = "smm_s2_d0__"
    A, B = gemm[p + "A_codes"], gemm[p + "B_codes"]
    want = fr.scaled_mm(A, B, use_fast_accum=False)
    kw = dict(a_format="float8_e4m3fn", b_format="e4m3", group=32,
              align_bits=13, out_bits=14, out_rounding="toward_zero",
              promote_every=128)
    assert np.array_equal(fr.fused_matmul(A, B.T, **kw), want)
    got = fr.fused_matmul(A.view(ml_dtypes.float8_e4m3fn),
                          B.T.view(ml_dtypes.float8_e4m3fn), **kw)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("fa,fb,instr", [
    ("e4m3", "e4m3", "qgmma_f32"), ("e5m2", "e4m3", "qgmma_f16"),
    ("e5m2", "e5m2", "qgmma_f32"), ("f16", "f16", "hmma_f32"),
    ("f16", "f16", "hmma_f16"), ("bf16", "bf16", "hmma_f32")])
def test_vectorised_form_equals_fraction_form(fa, fb, instr):
    """On random codes of every kind (subnormals, NaN, inf, extremes) and
    random accumulators (subnormal ones too), chained over two steps:
    the vectorised rule and the Fraction definition agree bit for bit.
    (Independent of the records: always runs.)"""
    rng = np.random.default_rng(17)
    a_fmt, b_fmt = fr.OPERANDS[fa], fr.OPERANDS[fb]
    ins = fr.INSTRUCTIONS[instr]
    acc = fr.ACC[ins.acc]
    n, k = 300, 2 * ins.group

    def codes(fmt, shape):
        nbits = 8 * fmt.dtype.itemsize
        dt = {8: np.uint8, 16: np.uint16, 32: np.uint32}[nbits]
        c = rng.integers(0, 1 << nbits, shape, dtype=np.uint64)
        # nine in ten magnitudes below 16 (sums stay finite mostly)
        cap = int(np.array(16.0, fmt.dtype).view(dt))
        mag = c & ((1 << (nbits - 1)) - 1)
        c = np.where(rng.random(shape) < 0.9,
                     (c - mag) | (mag % np.uint64(cap)), c)
        # a third of the codes from the smallest exponents (subnormals)
        small = rng.integers(0, 1 << (fmt.mbits + 2), shape, dtype=np.uint64)
        sign = rng.integers(0, 2, shape, dtype=np.uint64) << (nbits - 1)
        c = np.where(rng.random(shape) < 0.3, small | sign, c)
        v = fr.decode(c.astype(dt), fmt)
        # keep one NaN/inf in 20: most rows finite, some special
        return np.where(np.isfinite(v) | (rng.random(shape) < 0.05), v, 1.5)

    A, B = codes(a_fmt, (n, k)), codes(b_fmt, (n, k))
    C = codes(acc, (n,))
    got = fr.values_to_bits(fr._dot(ins, A, B, C, a_fmt, b_fmt), acc)
    finite = np.isfinite(fr.bits_to_values(got, acc))
    assert finite.sum() > 0.5 * n
    for i in range(n):
        want = fr.to_bits(fr._dot(ins, A[i], B[i], C[i], a_fmt, b_fmt,
                                  exact=True), acc)
        assert int(got[i]) == want, i
