"""FusedAccumulator and the H100 models (API.md section 7).

- every shipped H100 record (14 MMA variants, torch._scaled_mm, fp16
  matmul with split-K, _int_mm) reproduced bit for bit on each path of
  the kernel (float lanes, double lanes, scalar);
- the parameter checks;
- c= (D = A*B + C) for every accumulate mode against exact Fraction
  arithmetic;
- NaN / inf / overflow, float16 results, instruction sets and thread
  counts give the same bits.
The rule itself is checked against the independent Fraction reference in
tests/test_fused_reference.py."""
import os
import pickle
from fractions import Fraction

import numpy as np
import pytest

import lowprec as lp
from lowprec._clib import lib
from lowprec.matmul import _scaled_matmul
from lowprec.hardware import h100

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("LOWPREC_H100_DATA",
                      os.path.join(ROOT, "..", "shared", "h100"))
PATHS = (lib.LP_FUSED_NARROW, lib.LP_FUSED_WIDE, lib.LP_FUSED_SCALAR)
PATH_IDS = ("narrow", "wide", "scalar")
NAMES = {"e4m3": "e4m3", "e5m2": "e5m2", "f16": "float16",
         "bf16": "bfloat16"}


def _load(name):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"H100 records not found at {path} (set "
                    "LOWPREC_H100_DATA)")
    return np.load(path)


def _variants(fname):
    path = os.path.join(DATA, fname)
    if not os.path.exists(path):
        return []
    with np.load(path) as d:
        return sorted({k.split("__")[0] for k in d.files if "__" in k})


MMA = [("mma_sync_records.npz", v) for v in _variants("mma_sync_records.npz")]
MMA += [("wgmma_records.npz", v) for v in _variants("wgmma_records.npz")]


def _model(variant):
    parts = variant.split("_")
    fa, fb = NAMES[parts[2]], NAMES[parts[3]]
    acc = {"f32": "float32", "f16": "float16"}[parts[4]]
    factory = h100.wgmma if parts[0] == "wgmma" else h100.mma_sync
    return factory(fa, fb, acc), fa, fb, acc


def _records_product(A, B, C, fa, fb, acc, model, path, G=16):
    """Each record (row r of A and B, c[r]) as the diagonal of a G x G
    product, so that the vector paths (16 columns) run on records."""
    N, K = A.shape
    pad = (-N) % G
    if pad:
        A = np.concatenate([A, A[:pad]])
        B = np.concatenate([B, B[:pad]])
        C = np.concatenate([C, C[:pad]])
    n = A.shape[0] // G
    A3 = A.reshape(n, G, K)
    B3 = B.reshape(n, G, K).transpose(0, 2, 1)
    cv = C.view(np.float32 if acc == "float32" else np.float16)
    c3 = np.zeros((n, G, G), cv.dtype)
    i = np.arange(G)
    c3[:, i, i] = cv.reshape(n, G)
    r = _scaled_matmul(A3, B3, a_format=fa, b_format=fb, accumulate=model,
                       c=c3, fused_path=path)
    return r[:, i, i].reshape(-1)[:N]


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("fname,variant", MMA, ids=[v for _, v in MMA])
def test_mma_records(fname, variant, path):
    d = _load(fname)
    model, fa, fb, acc = _model(variant)
    A, B, C, D = (d[variant + s] for s in ("__a", "__b", "__c", "__d"))
    got = _records_product(A, B, C, fa, fb, acc, model, path)
    assert got.dtype == (np.float32 if acc == "float32" else np.float16)
    got = got.view(D.dtype)
    bad = np.flatnonzero(got != D)
    names = d["dist_names"]
    assert bad.size == 0, (
        f"{variant}: {bad.size} of {D.size} records differ, first "
        f"{[(int(i), str(names[d[variant + '__dist'][i]]), hex(got[i]), hex(D[i])) for i in bad[:4]]}")


def test_mma_records_cover_all_variants():
    if not MMA:
        pytest.skip("H100 records not found")
    assert len(MMA) == 14


def test_records_need_the_model():
    """The records tell the rules apart: the "fp32" rule misses many of
    them, so a test above cannot pass with a plain float32 chain."""
    d = _load("wgmma_records.npz")
    v = "wgmma_m64n8k32_e4m3_e4m3_f32"
    A, B, C, D = (d[v + s] for s in ("__a", "__b", "__c", "__d"))
    _, fa, fb, acc = _model(v)
    got = _records_product(A, B, C, fa, fb, acc, "fp32", None)
    assert (got.view(np.uint32) != D).mean() > 0.2


SMM = []
if os.path.exists(os.path.join(DATA, "torch_gemm.npz")):
    with np.load(os.path.join(DATA, "torch_gemm.npz")) as _d:
        SMM = sorted(k for k in _d.files if k.startswith("smm")
                     and "__out_" in k)


@pytest.mark.parametrize("key", SMM)
def test_scaled_mm_records(key):
    d = _load("torch_gemm.npz")
    prefix, rest = key.split("__out_")
    scal, od, fast = rest.split("_")
    A = d[prefix + "__A_codes"]
    B = d[prefix + "__B_codes"].T
    if scal == "tensor":
        sa = np.float32(d[prefix + "__scale_a_tensor"][0])
        sb = np.float32(d[prefix + "__scale_b_tensor"][0])
    else:
        sa = d[prefix + "__scale_a_row"].reshape(-1, 1)
        sb = d[prefix + "__scale_b_col"].reshape(1, -1)
    model = h100.scaled_mm(use_fast_accum=fast == "fast1")
    r = lp.scaled_matmul(A, B, a_format="e4m3", b_format="e4m3", a_scale=sa,
                         b_scale=sb, accumulate=model,
                         out_format=None if od == "f32" else "bfloat16")
    got = r.view(np.uint32 if od == "f32" else np.uint16)
    exp = d[key].view(got.dtype)
    assert int((got != exp).sum()) == 0


def test_scaled_mm_promotion_matters():
    """Promotion every 128 k and the row-wise epilogue order both change
    bits on the records: the models are not interchangeable."""
    d = _load("torch_gemm.npz")
    p = "smm_s2_d0"
    A, B = d[p + "__A_codes"], d[p + "__B_codes"].T
    sa = d[p + "__scale_a_row"].reshape(-1, 1)
    sb = d[p + "__scale_b_col"].reshape(1, -1)
    slow = lp.scaled_matmul(A, B, a_format="e4m3", b_format="e4m3",
                            a_scale=sa, b_scale=sb,
                            accumulate=h100.scaled_mm(False))
    fast = lp.scaled_matmul(A, B, a_format="e4m3", b_format="e4m3",
                            a_scale=sa, b_scale=sb,
                            accumulate=h100.scaled_mm(True))
    assert (slow != fast).any()
    plain = lp.scaled_matmul(A, B, a_format="e4m3", b_format="e4m3",
                             a_scale=sa, b_scale=sb,
                             accumulate=lp.FusedAccumulator(
                                 32, 13, out_bits=14, promote_every=128))
    assert (plain.view(np.uint32) != d[p + "__out_rowwise_f32_fast0"]).any()


@pytest.mark.parametrize("case,split", [("hmm_s0", 1), ("hmm_s1", 3)])
def test_fp16_matmul_records(case, split):
    d = _load("torch_gemm.npz")
    A = d[case + "__A_f16"].view(np.float16)
    B = d[case + "__B_f16"].view(np.float16)
    r = lp.scaled_matmul(A, B, accumulate=h100.matmul(split_k=split))
    assert r.dtype == np.float16
    for red in (0, 1):
        assert int((r.view(np.uint16) != d[f"{case}__out_reduced{red}"])
                   .sum()) == 0
    other = lp.scaled_matmul(A, B, accumulate=h100.matmul(split_k=2))
    assert (other.view(np.uint16) != d[f"{case}__out_reduced0"]).any()


def test_int_mm_records():
    d = _load("torch_gemm.npz")
    assert np.array_equal(lp.int_matmul(d["intmm__A"], d["intmm__B"]),
                          d["intmm__C_int32"])


# -- parameters -----------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(group=0, align_bits=13), ValueError, "group"),
    (dict(group=1.5, align_bits=13), TypeError, "group"),
    (dict(group=True, align_bits=13), TypeError, "group"),
    (dict(group=32, align_bits=0), ValueError, "align_bits"),
    (dict(group=32, align_bits=65), ValueError, "align_bits"),
    (dict(group=32, align_bits=13, out_bits=0), ValueError, "out_bits"),
    (dict(group=32, align_bits=13, out_bits=25), ValueError, "out_bits"),
    (dict(group=32, align_bits=13, out_bits=12, accumulator="float16"),
     ValueError, "out_bits"),
    (dict(group=32, align_bits=13, accumulator="bfloat16"), ValueError,
     "accumulator"),
    (dict(group=32, align_bits=13, out_rounding="stochastic"), ValueError,
     "out_rounding"),
    (dict(group=32, align_bits=13, out_rounding="up"), ValueError,
     "out_rounding"),
    (dict(group=32, align_bits=13, promote_every=48), ValueError,
     "promote_every"),
    (dict(group=32, align_bits=13, promote_every=0), ValueError,
     "promote_every"),
    (dict(group=32, align_bits=13, promote_every=64.0), TypeError,
     "promote_every"),
])
def test_bad_parameters(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        lp.FusedAccumulator(**kwargs)


def test_bad_instruction_operands():
    with pytest.raises(ValueError, match="a_format"):
        h100.wgmma("e4m3", "float16")
    with pytest.raises(ValueError, match="a_format"):
        h100.mma_sync("e2m1", "e2m1")
    with pytest.raises(ValueError, match="accumulator"):
        h100.wgmma("bfloat16", "bfloat16", "float16")
    with pytest.raises(ValueError, match="accumulator"):
        h100.wgmma("e4m3", "e4m3", "float64")
    with pytest.raises(TypeError, match="use_fast_accum"):
        h100.scaled_mm(use_fast_accum=1)
    with pytest.raises(ValueError, match="split_k"):
        h100.matmul(split_k=0)
    a = np.zeros((2, 32), np.uint8)
    b = np.zeros((32, 2), np.uint16)
    with pytest.raises(ValueError, match="a_format"):
        lp.scaled_matmul(a, b, a_format="e4m3", b_format="float16",
                         accumulate=h100.scaled_mm())
    with pytest.raises(ValueError, match="a_format"):
        lp.scaled_matmul(a, a.T.copy(), a_format="int8", b_format="int8",
                         accumulate=lp.FusedAccumulator(32, 13))


def test_value_object():
    m = lp.FusedAccumulator(32, 13, out_bits=14, promote_every=128)
    assert m == lp.FusedAccumulator(32, 13, out_bits=14, promote_every=128)
    assert hash(m) == hash(lp.FusedAccumulator(32, 13, out_bits=14,
                                               promote_every=128))
    assert m != lp.FusedAccumulator(32, 13, out_bits=14)
    for x in (m, h100.wgmma("e4m3", "e5m2"), h100.matmul(3),
              h100.mma_sync("e4m3", "e4m3", "float16")):
        assert pickle.loads(pickle.dumps(x)) == x
    assert "promote_every=128" in repr(m)
    assert repr(h100.scaled_mm()) == "h100.scaled_mm(use_fast_accum=False)"
    with pytest.raises(AttributeError):
        m.group = 3


# -- c= for every mode, against exact arithmetic ----------------------------

def round_frac(x, bits, emin, emax, mode="nearest_even"):
    """Fraction x rounded to bits significant bits, exponents >= emin
    (subnormals kept), |x| >= 2^(emax+1) after rounding -> inf."""
    if x == 0:
        return Fraction(0)
    s = -1 if x < 0 else 1
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    q = max(e, emin) - bits + 1
    y = a / Fraction(2) ** q
    n = y.numerator // y.denominator
    r = y - n
    if mode == "nearest_even":
        n += r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2 == 1)
    elif mode == "toward_zero":
        pass
    v = n * Fraction(2) ** q
    if v >= Fraction(2) ** (emax + 1):
        return s * float("inf")
    return s * v


def _f32(x):
    return np.float32(float(x)) if not isinstance(x, float) else \
        np.float32(x)


def _vals(codes, fmt):
    return [Fraction(float(v)) for v in lp.decode(codes, fmt,
                                                  dtype=np.float64).ravel()]


@pytest.fixture
def small_product():
    rng = np.random.default_rng(7)
    M, K, N = 5, 24, 4
    a = lp.encode(rng.standard_normal((M, K)).astype(np.float32) * 4, "e4m3")
    b = lp.encode(rng.standard_normal((K, N)).astype(np.float32), "e5m2")
    c = (rng.standard_normal((M, N)) * 100).astype(np.float32)
    c[0, 0] = np.float32(1e30)
    c[1, 1] = np.float32(-3e-40)           # subnormal
    c[2, 2] = -0.0
    return a, b, c


def test_c_exact(small_product):
    a, b, c = small_product
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                         accumulate="exact", c=c)
    A = np.array(_vals(a, "e4m3"), object).reshape(a.shape)
    B = np.array(_vals(b, "e5m2"), object).reshape(b.shape)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            exact = sum(A[i, k] * B[k, j] for k in range(a.shape[1])) \
                + Fraction(float(c[i, j]))
            assert r[i, j] == _f32(round_frac(exact, 24, -126, 127)), (i, j)


def test_c_fp32_and_accumulator(small_product):
    a, b, c = small_product
    A = np.array(_vals(a, "e4m3"), object).reshape(a.shape)
    B = np.array(_vals(b, "e5m2"), object).reshape(b.shape)
    r32 = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                           accumulate="fp32", c=c)
    rbf = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                           accumulate=lp.Accumulator("bfloat16"), c=c)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc32 = accbf = Fraction(float(c[i, j]))
            for k in range(a.shape[1]):
                acc32 = round_frac(acc32 + A[i, k] * B[k, j], 24, -126, 127)
                accbf = round_frac(accbf + A[i, k] * B[k, j], 8, -126, 127)
            assert r32[i, j] == _f32(acc32), (i, j)
            assert rbf[i, j] == _f32(accbf), (i, j)


def test_c_fast(small_product):
    a, b, c = small_product
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                         accumulate="fast", c=c)
    base = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                            accumulate="fast")
    assert np.array_equal(r, base + c)


def test_c_fused_is_first_accumulator(small_product):
    """A fused model's c is the first step's accumulator term: with
    group >= K the result is one rounding of the aligned, truncated sum."""
    a, b, c = small_product
    m = lp.FusedAccumulator(32, 60, out_bits=24,
                            out_rounding="nearest_even")
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                         accumulate=m, c=c)
    # 60 kept bits hold every term of these inputs exactly unless c is far
    # above the products: compare where nothing is truncated
    ex = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e5m2",
                          accumulate="exact", c=c)
    small = np.abs(c) < 1e6
    assert np.array_equal(r[small], ex[small])


def test_c_checks(small_product):
    a, b, c = small_product
    kw = dict(a_format="e4m3", b_format="e5m2")
    with pytest.raises(ValueError, match="unit scales"):
        lp.scaled_matmul(a, b, a_scale=2.0, c=c, **kw)
    with pytest.raises(ValueError, match="broadcast"):
        lp.scaled_matmul(a, b, c=np.zeros((3, 3), np.float32), **kw)
    with pytest.raises(ValueError, match="float32"):
        lp.scaled_matmul(a, b, c=np.full((5, 4), 0.1), **kw)
    with pytest.raises(ValueError, match="float16"):
        lp.scaled_matmul(a, b, c=c, accumulate=lp.FusedAccumulator(
            32, 13, out_bits=11, accumulator="float16",
            out_rounding="nearest_even"), **kw)
    with pytest.raises(TypeError, match="c must"):
        lp.scaled_matmul(a, b, c=np.array(["x"]), **kw)


# -- specials, dtypes, determinism -------------------------------------------

def test_specials_give_hardware_nan():
    m = h100.wgmma("e4m3", "e4m3")
    f = lp.get_format("e4m3")
    a = np.full((3, 32), lp.encode(np.float32(1.0), "e4m3"), np.uint8)
    b = np.full((32, 20), lp.encode(np.float32(1.0), "e4m3"), np.uint8)
    a[0, 5] = f.nan_code
    a[1, :] = 0
    b[:, 3] = 0
    c = np.zeros((3, 20), np.float32)
    c[2, 7] = np.inf
    c[2, 8] = -np.inf
    c[1, 9] = np.nan
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                         accumulate=m, c=c)
    bits = r.view(np.uint32)
    assert (bits[0] == 0x7FFFFFFF).all()
    assert bits[1, 9] == 0x7FFFFFFF
    assert r[2, 7] == np.inf and r[2, 8] == -np.inf
    assert (bits[1, :9] == 0).all()            # exact zero sum: +0
    assert r[2, 0] == 32


def test_overflow_to_inf_and_float16():
    m = h100.wgmma("e4m3", "e4m3", "float16")
    a = np.full((2, 32), lp.encode(np.float32(448.0), "e4m3"), np.uint8)
    b = np.full((32, 16), lp.encode(np.float32(448.0), "e4m3"), np.uint8)
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                         accumulate=m)
    assert r.dtype == np.float16 and (r == np.inf).all()
    c = np.full((2, 16), np.nan, np.float16)
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                         accumulate=m, c=c)
    assert (r.view(np.uint16) == 0x7FFF).all()


@pytest.mark.parametrize("model", [
    h100.scaled_mm(), h100.wgmma("float16", "float16"),
    lp.FusedAccumulator(8, 20, out_bits=20, out_rounding="to_odd",
                        promote_every=24)], ids=repr)
def test_threads_isas_and_paths_agree(model, monkeypatch):
    rng = np.random.default_rng(3)
    fmt = "float16" if "float16" in repr(model) else "e4m3"
    a = lp.encode(rng.standard_normal((70, 300)).astype(np.float32), fmt)
    b = lp.encode(rng.standard_normal((300, 37)).astype(np.float32), fmt)
    kw = dict(a_format=fmt, b_format=fmt, accumulate=model)
    ref = _scaled_matmul(a, b, fused_path=lib.LP_FUSED_SCALAR, **kw)
    for threads in ("1", "2"):
        monkeypatch.setenv("LOWPREC_NUM_THREADS", threads)
        for isa in (0, 1, 2):
            for path in PATHS:
                got = _scaled_matmul(a, b, isa=isa, fused_path=path, **kw)
                assert np.array_equal(got.view(np.uint32),
                                      ref.view(np.uint32)), (threads, isa)


def test_blocks_and_batches():
    """Blocked scales: each K-block is its own chain, then section 3's
    epilogue; batched operands broadcast as np.matmul."""
    rng = np.random.default_rng(5)
    a = lp.encode(rng.standard_normal((2, 4, 64)).astype(np.float32), "e4m3")
    b = lp.encode(rng.standard_normal((64, 3)).astype(np.float32), "e4m3")
    m = lp.FusedAccumulator(16, 13, out_bits=14)
    sa = np.float32(2.0) ** rng.integers(-3, 3, (2, 4, 2)).astype(np.float32)
    sb = np.float32(2.0) ** rng.integers(-3, 3, (2, 3)).astype(np.float32)
    r = lp.scaled_matmul(a, b, a_format="e4m3", b_format="e4m3",
                         accumulate=m, a_scale=sa, b_scale=sb, block=(32,))
    for t in range(2):
        for blk in range(2):
            p = lp.scaled_matmul(a[t][:, 32 * blk:32 * blk + 32],
                                 b[32 * blk:32 * blk + 32], a_format="e4m3",
                                 b_format="e4m3", accumulate=m)
            s = (sa[t][:, blk:blk + 1] * sb[blk:blk + 1]).astype(np.float32)
            part = (p * s).astype(np.float32)
            acc = part if blk == 0 else (acc + part).astype(np.float32)
        assert np.array_equal(r[t], acc)


@pytest.mark.parametrize("variant,model", [
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(32, 12, out_bits=14)),
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(32, 14, out_bits=14)),
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(32, 13, out_bits=13)),
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(32, 13, out_bits=15)),
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(
        32, 13, out_bits=14, out_rounding="nearest_even")),
    ("wgmma_m64n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(16, 13, out_bits=14)),
    ("wgmma_m64n8k16_f16_f16_f32", lp.FusedAccumulator(16, 24)),
    ("wgmma_m64n8k16_f16_f16_f32", lp.FusedAccumulator(16, 26)),
    ("wgmma_m64n8k16_f16_f16_f32", lp.FusedAccumulator(
        16, 25, out_rounding="nearest_even")),
    ("mma_m16n8k32_e4m3_e4m3_f32", lp.FusedAccumulator(32, 25)),
    ("mma_m16n8k32_e4m3_e4m3_f32",
     h100.mma_sync("e4m3", "e4m3")._with(k_order=None)),
], ids=lambda x: x if isinstance(x, str) else repr(x))
def test_records_decide_each_parameter(variant, model):
    """Each parameter is fixed by the records, not fitted: one bit more or
    less kept, one output bit more or less, the other rounding, another
    group, or (FP8 mma.sync) one step or the natural k order each miss
    hundreds of records."""
    fname = "wgmma_records.npz" if variant.startswith("wgmma") else \
        "mma_sync_records.npz"
    d = _load(fname)
    _, fa, fb, acc = _model(variant)
    A, B, C, D = (d[variant + s] for s in ("__a", "__b", "__c", "__d"))
    got = _records_product(A, B, C, fa, fb, acc, model, None)
    assert int((got.view(D.dtype) != D).sum()) > 100


def test_hardware_doc_examples_run():
    with open(os.path.join(ROOT, "docs", "hardware.md")) as fh:
        text = fh.read()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    runnable = [b for b in blocks if "import lowprec" in b]
    assert runnable
    for code in runnable:
        exec(compile(code, "docs/hardware.md", "exec"), {})


@pytest.mark.parametrize("path", PATHS, ids=PATH_IDS)
def test_sum_rounding_to_zero_is_plus_zero(path):
    """bfloat16 products far below float32's range round to zero: +0, as
    an exactly zero sum (on every path)."""
    a = lp.encode(np.full((2, 16), -2.0 ** -100, np.float32), "bfloat16")
    b = lp.encode(np.full((16, 16), 2.0 ** -100, np.float32), "bfloat16")
    r = _scaled_matmul(a, b, a_format="bfloat16", b_format="bfloat16",
                       accumulate=h100.wgmma("bfloat16", "bfloat16"),
                       fused_path=path)
    assert (r.view(np.uint32) == 0).all()
