"""lowprec.dask: every function on Dask arrays against the NumPy call on the
whole array, bit for bit, for many chunkings (uneven ones included),
stochastic rounding included; the stochastic draws and the exact K
reduction also against the independent reference (lowprec.reference:
Python integers and Fractions); a two-process distributed cluster runs a
few of them."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import lowprec as lp  # noqa: E402
import lowprec.dask as lpd  # noqa: E402
from lowprec.convert import index_map  # noqa: E402
from lowprec.reference import ref_encode, ref_random  # noqa: E402


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint8 if a.dtype.itemsize == 1 else
                  np.dtype(f"u{a.dtype.itemsize}"))


def _same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape and x.dtype == y.dtype
    assert np.array_equal(_bits(x), _bits(y))


RNG = np.random.default_rng(20261203)
X3 = RNG.normal(size=(7, 11, 13)) * np.exp2(RNG.integers(-8, 8, (7, 11, 13)))
CHUNKS3 = [(3, 4, 5), (7, 11, 13), (1, 11, 13), (2, 11, 4), (7, 1, 1),
           ((1, 6), (10, 1), (2, 2, 9))]


# -- index maps ---------------------------------------------------------------

@pytest.mark.parametrize("chunks", CHUNKS3, ids=str)
def test_index_map_is_the_flat_index(chunks):
    """The map of every chunk lists the chunk's flat indices in the whole
    array (reference: np.arange over the whole shape, sliced)."""
    shape = X3.shape
    flat = np.arange(X3.size).reshape(shape)
    d = da.from_array(X3, chunks=chunks)
    offs = [np.cumsum((0,) + c[:-1]) for c in d.chunks]
    for idx in np.ndindex(*d.numblocks):
        off = [int(offs[k][i]) for k, i in enumerate(idx)]
        ch = [d.chunks[k][i] for k, i in enumerate(idx)]
        want = flat[tuple(slice(o, o + c) for o, c in zip(off, ch))]
        m = index_map(off, ch, shape)
        if m is None:
            got = np.arange(int(np.prod(ch)))
        else:
            run, starts = m
            local = np.arange(int(np.prod(ch)))
            got = starts[local // run] + local % run
        assert np.array_equal(got, want.reshape(-1))


# -- element-wise functions ---------------------------------------------------

@pytest.mark.parametrize("chunks", CHUNKS3, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16,
                                   "bfloat16"])
@pytest.mark.parametrize("fmt", ["e4m3", "bfloat16", "int8", "e2m1",
                                 "e8m0"])
def test_encode_quantize_stochastic(chunks, dtype, fmt):
    x = np.abs(X3) if fmt == "e8m0" else X3
    x = x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    d = da.from_array(x, chunks=chunks)
    kw = dict(rounding="stochastic", seed=77, saturate=True)
    _same(lpd.encode(d, fmt, **kw).compute(), lp.encode(x, fmt, **kw))
    _same(lpd.quantize(d, fmt, **kw).compute(), lp.quantize(x, fmt, **kw))


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero", "to_odd",
                                      "stochastic"])
def test_encode_scale_and_zero_point_arrays(rounding):
    """Array scales and zero points (NumPy and Dask) chunk with x."""
    d = da.from_array(X3, chunks=(3, 4, 5))
    scale = np.exp2(RNG.integers(-3, 3, size=(1, 11, 13))).astype(np.float32)
    zp = RNG.integers(-20, 20, size=(7, 1, 13))
    kw = dict(rounding=rounding, seed=3)
    _same(lpd.encode(d, "e5m2", scale=scale, **kw).compute(),
          lp.encode(X3, "e5m2", scale=scale, **kw))
    _same(lpd.encode(d, "int8", scale=da.from_array(scale, chunks=5),
                     zero_point=zp, **kw).compute(),
          lp.encode(X3, "int8", scale=scale, zero_point=zp, **kw))
    _same(lpd.quantize(d, "e4m3", scale=scale, **kw).compute(),
          lp.quantize(X3, "e4m3", scale=scale, **kw))


def test_stochastic_against_reference():
    """Each element of a chunked stochastic encode is ref_encode of its
    value with the draw ref_random(seed, flat index in the whole array)."""
    x = RNG.normal(size=(5, 9))
    d = da.from_array(x, chunks=((2, 3), (4, 1, 4)))
    got = lpd.encode(d, "e4m3", rounding="stochastic", seed=12345).compute()
    want = [ref_encode(lp.get_format("e4m3"), float(v), "stochastic",
                       rand=ref_random(12345, i))
            for i, v in enumerate(x.reshape(-1))]
    assert got.reshape(-1).tolist() == want


@st.composite
def _chunked(draw):
    """A shape of 1 to 4 axes and a random chunking of each axis."""
    shape = draw(st.lists(st.integers(1, 9), min_size=1, max_size=4))
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))
                      if n > 1 else set())
        edges = [0] + cuts + [n]
        chunks.append(tuple(b - a for a, b in zip(edges, edges[1:])))
    return tuple(shape), tuple(chunks)


@settings(max_examples=60)
@given(_chunked(), st.integers(0, 2**64 - 1),
       st.sampled_from(["e4m3", "e2m1", "bfloat16", "int4"]))
def test_stochastic_any_chunking(sc, seed, fmt):
    shape, chunks = sc
    x = np.random.default_rng(seed % 1000).normal(size=shape) * 3
    kw = dict(rounding="stochastic", seed=seed, saturate=True)
    d = da.from_array(x, chunks=chunks)
    _same(lpd.encode(d, fmt, **kw).compute(scheduler="synchronous"),
          lp.encode(x, fmt, **kw))
    x32 = x.astype(np.float32)
    _same(lpd.quantize(da.from_array(x32, chunks=chunks), fmt,
                       **kw).compute(scheduler="synchronous"),
          lp.quantize(x32, fmt, **kw))


def test_stochastic_per_chunk_calls_differ():
    """The check above can fail: the NumPy call on each chunk alone (draws
    keyed on the chunk's own indices) gives other bits."""
    x = RNG.normal(size=(64, 64))
    whole = lp.encode(x, "e2m1", rounding="stochastic", seed=1)
    part = lp.encode(x[:, 32:], "e2m1", rounding="stochastic", seed=1)
    assert not np.array_equal(part, whole[:, 32:])


def test_seed_none_draws_one_seed_for_the_array(monkeypatch):
    """seed=None: one seed for the whole array, drawn once at graph
    construction (here made known), so the chunks key on the whole array's
    indices as the NumPy call with that seed does."""
    draws = []

    def randbits(n):
        draws.append(n)
        return 0x5EED5EED5EED
    monkeypatch.setattr(lpd.secrets, "randbits", randbits)
    x = RNG.normal(size=(40, 30))
    r = lpd.quantize(da.from_array(x, chunks=(7, 9)), "e5m2",
                     rounding="stochastic")
    first, second = r.compute(), r.compute()
    assert draws == [64]
    _same(first, second)
    _same(first, lp.quantize(x, "e5m2", rounding="stochastic",
                             seed=0x5EED5EED5EED))


def test_decode_and_empty():
    codes = RNG.integers(0, 255, size=(9, 10)).astype(np.uint8)
    d = da.from_array(codes, chunks=(4, 3))
    _same(lpd.decode(d, "e5m2", dtype=np.float64).compute(),
          lp.decode(codes, "e5m2", dtype=np.float64))
    _same(lpd.decode(d, "e4m3", dtype="bfloat16", scale=2.0).compute(),
          lp.decode(codes, "e4m3", dtype="bfloat16", scale=2.0))
    e = da.from_array(np.empty((0, 3)), chunks=2)
    assert lpd.encode(e, "e4m3").compute().shape == (0, 3)


def test_errors():
    d = da.from_array(X3, chunks=4)
    with pytest.raises(ValueError, match="rounding"):
        lpd.encode(d, "e4m3", rounding="nearest")
    with pytest.raises(TypeError, match="dtype"):
        lpd.encode(d.astype(np.complex64), "e4m3")
    with pytest.raises(TypeError, match="out="):
        lpd.quantize(d, "e4m3", out=np.empty(X3.shape))
    with pytest.raises(ValueError, match="broadcast"):
        lpd.encode(d, "e4m3", scale=np.ones((2, 3)))
    bad = X3.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lpd.encode(da.from_array(bad, chunks=4), "e2m1").compute()
    with pytest.raises(ValueError, match="axis"):
        lpd.quantize_blocks(d, "mxfp4", axis=3)


# -- block formats ------------------------------------------------------------

@pytest.mark.parametrize("chunks", [(3, 4, 5), (7, 11, 13), ((1, 6), (10, 1),
                                                               (2, 2, 9))],
                         ids=str)
@pytest.mark.parametrize("recipe,axis", [("mxfp4", -1), ("mxfp8_e4m3", 1),
                                         ("nvfp4", -1), ("mxint8", 0),
                                         ("fp8_128x128", None)])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
def test_quantize_blocks(chunks, recipe, axis, rounding):
    x = X3.copy()
    x[2, 3, 4] = np.inf
    kw = dict(rounding=rounding, seed=99)
    if recipe == "fp8_128x128":
        kw["block"] = (4, 4)
    elif recipe in ("mxfp4", "nvfp4", "mxint8"):
        kw["block"] = 4
        kw["axis"] = axis
    else:
        kw["axis"] = axis
    d = da.from_array(x, chunks=chunks)
    bt = lpd.quantize_blocks(d, recipe, **kw)
    ref = lp.quantize_blocks(x, recipe, **kw)
    got = bt.compute()
    _same(got.codes, ref.codes)
    _same(got.scales, ref.scales)
    assert got.tensor_scale == ref.tensor_scale
    assert got.axis == ref.axis and got.format == ref.format
    assert bt.codes.chunks == bt.dequantize().chunks
    _same(bt.dequantize(np.float64).compute(), ref.dequantize(np.float64))
    _same(lpd.quantize(d, recipe, **kw).compute(),
          lp.quantize(x, recipe, **kw))


def test_quantize_blocks_rechunks_to_whole_blocks():
    d = da.from_array(RNG.normal(size=(8, 100)), chunks=30)
    bt = lpd.quantize_blocks(d, "mxfp4")
    assert bt.codes.chunks[1] == (32, 32, 32, 4)
    assert bt.scales.chunks[1] == (1, 1, 1, 1)
    assert bt.codes.chunks[0] == (8,)


# -- scaled_matmul ------------------------------------------------------------

M, K, N = 37, 96, 29


def _operands(fmt, specials=False):
    a = lp.encode(RNG.normal(size=(M, K)) * 4, fmt, saturate=True)
    b = lp.encode(RNG.normal(size=(K, N)) * 4, fmt, saturate=True)
    if specials:
        f = lp.get_format(fmt)
        a[3, 7] = lp.encode(np.inf, f) if f.name != "float8_e4m3fn" \
            else lp.encode(np.nan, f)
        b[11, 2] = lp.encode(np.nan, f)
        b[50, 5] = lp.encode(-np.inf, f) if f.name != "float8_e4m3fn" \
            else 0
    return a, b


K_CHUNKS = [(96,), (40, 56), (1, 95), (16,) * 6, (50, 3, 43)]


@pytest.mark.parametrize("fmt", ["e4m3", "e5m2", "bfloat16", "float16",
                                 "e2m1", "float32"])
@pytest.mark.parametrize("kch", K_CHUNKS, ids=str)
def test_exact_k_chunks(fmt, kch):
    """Unblocked "exact" over K chunks (float64 partial sums for e4m3 /
    e2m1, limbs for the wide formats): the NumPy call's bits."""
    a, b = _operands(fmt, specials=fmt in ("e5m2", "bfloat16"))
    A = da.from_array(a, chunks=((20, 17), kch))
    B = da.from_array(b, chunks=(kch[::-1], (13, 16)))
    sa = RNG.uniform(0.5, 2, size=(M, 1)).astype(np.float32)
    sb = RNG.uniform(0.5, 2, size=(1, N)).astype(np.float32)
    for kw in (dict(), dict(a_scale=sa, b_scale=sb),
               dict(a_scale=np.float32(0.75), b_scale=da.from_array(sb))):
        kw.update(a_format=fmt, b_format=fmt, accumulate="exact")
        ref = lp.scaled_matmul(a, b, **kw)
        got = lpd.scaled_matmul(A, B, **kw).compute()
        _same(got, ref)


def _r32(v):
    """float32 nearest-even of an exact value (lowprec.reference)."""
    c = ref_encode(lp.get_format("float32"), v)
    return np.array([c], np.uint32).view(np.float32)[0]


@pytest.mark.parametrize("fmt", ["bfloat16", "e4m3"])
def test_exact_k_chunks_against_fractions(fmt):
    """The K-chunked exact product of small operands against Fraction sums
    rounded once by lowprec.reference (limbs for bfloat16, float64 partial
    sums for e4m3)."""
    f = lp.get_format(fmt)
    x = RNG.normal(size=(4, 40)) * np.exp2(RNG.integers(-30, 30, (4, 40)))
    y = RNG.normal(size=(40, 3)) * np.exp2(RNG.integers(-30, 30, (40, 3)))
    a, b = lp.encode(x, f, saturate=True), lp.encode(y, f, saturate=True)
    va, vb = lp.decode(a, f, dtype=np.float64), lp.decode(b, f,
                                                          dtype=np.float64)
    got = lpd.scaled_matmul(da.from_array(a, chunks=(3, 7)),
                            da.from_array(b, chunks=(13, 2)), a_format=f,
                            b_format=f, accumulate="exact").compute()
    for i in range(4):
        for j in range(3):
            s = sum(Fraction(float(va[i, k])) * Fraction(float(vb[k, j]))
                    for k in range(40))
            assert got[i, j] == _r32(s) or (s == 0 and got[i, j] == 0)


@pytest.mark.parametrize("acc", ["exact", "fp32", "fast",
                                 lp.Accumulator("bfloat16")], ids=str)
@pytest.mark.parametrize("kch", [(32, 64), (96,), (32,) * 3], ids=str)
def test_blocked_k_chunks(acc, kch):
    """block=(32,): K chunks of whole blocks (also rechunked so from
    uneven ones) fold the scaled block products in block order: every rule
    gives the NumPy call's bits (fast: within rounding)."""
    a, b = _operands("e4m3")
    sa = RNG.uniform(0.5, 2, size=(M, 3)).astype(np.float32)
    sb = RNG.uniform(0.5, 2, size=(3, N)).astype(np.float32)
    kw = dict(a_format="e4m3", b_format="e4m3", a_scale=sa, b_scale=sb,
              block=(32,), accumulate=acc)
    ref = lp.scaled_matmul(a, b, **kw)
    for kb in (kch, (50, 46)):
        A = da.from_array(a, chunks=(10, kb))
        B = da.from_array(b, chunks=(kb, 7))
        got = lpd.scaled_matmul(A, B, **kw).compute()
        if acc == "fast":
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
        else:
            _same(got, ref)


def test_block_2d_scales_and_mx():
    a, b = _operands("e4m3")
    sa = lp.encode(RNG.uniform(0.25, 4, size=(M, 3)), "e8m0").view(
        ml_dtypes.float8_e8m0fnu)
    sb = RNG.uniform(0.5, 2, size=(3, 1)).astype(np.float32)
    A = da.from_array(a, chunks=(20, 40))
    B = da.from_array(b, chunks=(40, 29))
    kw = dict(a_format="e4m3", b_format="e4m3", a_scale=sa, b_scale=sb,
              accumulate="exact")                      # implicit MX blocks
    _same(lpd.scaled_matmul(A, B, **kw).compute(), lp.scaled_matmul(a, b,
                                                                    **kw))
    sb2 = RNG.uniform(0.5, 2, size=(3, 1)).astype(np.float32)
    kw = dict(a_format="e4m3", b_format="e4m3", a_scale=sa.astype(
        np.float32), b_scale=sb2, block=(32, 29),
        accumulate="fp32")
    _same(lpd.scaled_matmul(A, B, **kw).compute(), lp.scaled_matmul(a, b,
                                                                    **kw))


@pytest.mark.parametrize("acc", ["fp32", lp.Accumulator("float16"),
                                 lp.Accumulator("bfloat16",
                                                rounding="toward_zero")],
                         ids=str)
@pytest.mark.parametrize("fmt", ["e4m3", "bfloat16"])
def test_fp32_k_chunks_chain(acc, fmt):
    """Unblocked fp32 / Accumulator chains over K chunks: each chunk starts
    from the previous one's accumulator; per-row / column scales after;
    c= starts the chain: the NumPy call's bits for uneven chunkings."""
    a, b = _operands(fmt, specials=fmt == "bfloat16")
    sa = RNG.uniform(0.5, 2, size=(M, 1)).astype(np.float32)
    sb = RNG.uniform(0.5, 2, size=(1, N)).astype(np.float32)
    c = RNG.normal(size=(M, N)).astype(np.float32)
    kw = dict(a_format=fmt, b_format=fmt, accumulate=acc)
    for kch in ((40, 56), (1, 95), (50, 3, 43)):
        A = da.from_array(a, chunks=((20, 17), kch))
        B = da.from_array(b, chunks=(kch[::-1], (13, 16)))
        for extra in (dict(), dict(a_scale=sa, b_scale=sb), dict(c=c)):
            _same(lpd.scaled_matmul(A, B, **kw, **extra).compute(),
                  lp.scaled_matmul(a, b, **kw, **extra))
    with pytest.raises(ValueError, match="unit scales"):
        lpd.scaled_matmul(A, B, **kw, c=c, a_scale=sa).compute()


def test_wide_accumulator_k_chunks_raise():
    """An Accumulator whose values are not float32 numbers cannot pass its
    chain between K chunks: ValueError; one K chunk gives the NumPy
    call's bits."""
    a, b = _operands("e4m3")
    acc = lp.Accumulator(lp.FloatFormat(8, 7, bias=100))
    kw = dict(a_format="e4m3", b_format="e4m3", accumulate=acc)
    with pytest.raises(ValueError, match="K"):
        lpd.scaled_matmul(da.from_array(a, chunks=(10, 40)),
                          da.from_array(b, chunks=(40, 10)), **kw)
    _same(lpd.scaled_matmul(da.from_array(a, chunks=(10, -1)),
                            da.from_array(b, chunks=(-1, 10)),
                            **kw).compute(), lp.scaled_matmul(a, b, **kw))


def test_fast_k_chunks_and_output_stage():
    a, b = _operands("e5m2")
    A = da.from_array(a, chunks=(10, 40))
    B = da.from_array(b, chunks=(40, 10))
    kw = dict(a_format="e5m2", b_format="e5m2", a_scale=0.5)
    got = lpd.scaled_matmul(A, B, accumulate="fast", **kw).compute()
    ref = lp.scaled_matmul(a, b, accumulate="fast", **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    kw.update(accumulate="exact", out_format="e4m3", out_scale=2.0)
    _same(lpd.scaled_matmul(A, B, **kw).compute(), lp.scaled_matmul(a, b,
                                                                    **kw))


def test_matmul_errors():
    a, b = _operands("e4m3")
    A = da.from_array(a, chunks=10)
    with pytest.raises(ValueError, match=r"\(37, 96\).*\(37, 96\)"):
        lpd.scaled_matmul(A, A, a_format="e4m3", b_format="e4m3")
    with pytest.raises(ValueError, match="2-D"):
        lpd.scaled_matmul(A[None], A.T, a_format="e4m3", b_format="e4m3")
    with pytest.raises(ValueError, match="vary along K"):
        lpd.scaled_matmul(A, da.from_array(b), a_format="e4m3",
                          b_format="e4m3", a_scale=np.ones((M, 3),
                                                           np.float32))
    with pytest.raises(ValueError, match="accumulate"):
        lpd.scaled_matmul(A, da.from_array(b), a_format="e4m3",
                          b_format="e4m3", accumulate="exactly")


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "nvfp4", "mxint8"])
@pytest.mark.parametrize("acc", ["exact", "fp32"])
def test_block_tensor_matmul(recipe, acc):
    x = RNG.normal(size=(M, 128))
    y = RNG.normal(size=(128, N))
    x[3, 5] = np.nan
    y[70, 4] = np.inf
    ref = lp.scaled_matmul(lp.quantize_blocks(x, recipe, axis=1),
                           lp.quantize_blocks(y, recipe, axis=0),
                           accumulate=acc)
    A = lpd.quantize_blocks(da.from_array(x, chunks=(10, 50)), recipe,
                            axis=1)
    B = lpd.quantize_blocks(da.from_array(y, chunks=(30, 7)), recipe,
                            axis=0)
    _same(lpd.scaled_matmul(A, B, accumulate=acc).compute(), ref)


# -- a distributed cluster of two worker processes ----------------------------

@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True,
                                       threads_per_worker=1,
                                       dashboard_address=None)
    cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


def test_cluster_stochastic_and_blocks(client):
    x = RNG.normal(size=(300, 200)).astype(np.float32)
    d = da.from_array(x, chunks=(70, 90))
    kw = dict(rounding="stochastic", seed=5)
    got = client.compute(lpd.quantize(d, "e4m3", **kw)).result()
    _same(got, lp.quantize(x, "e4m3", **kw))
    bt = lpd.quantize_blocks(d, "nvfp4", **kw)
    codes, scales = client.compute([bt.codes, bt.scales])
    ref = lp.quantize_blocks(x, "nvfp4", **kw)
    _same(codes.result(), ref.codes)
    _same(scales.result(), ref.scales)


def test_cluster_exact_matmul(client):
    a, b = _operands("bfloat16", specials=True)
    A = da.from_array(a, chunks=(20, (30, 66)))
    B = da.from_array(b, chunks=((50, 46), 16))
    kw = dict(a_format="bfloat16", b_format="bfloat16", accumulate="exact")
    got = client.compute(lpd.scaled_matmul(A, B, **kw)).result()
    _same(got, lp.scaled_matmul(a, b, **kw))


def test_stochastic_accumulator_needs_one_chunk():
    a, b = _operands("e4m3")
    acc = lp.Accumulator("bfloat16", rounding="stochastic", seed=4)
    kw = dict(a_format="e4m3", b_format="e4m3", accumulate=acc)
    with pytest.raises(ValueError, match="one chunk"):
        lpd.scaled_matmul(da.from_array(a, chunks=(10, -1)),
                          da.from_array(b, chunks=-1), **kw)
    _same(lpd.scaled_matmul(da.from_array(a), da.from_array(b),
                            **kw).compute(), lp.scaled_matmul(a, b, **kw))


def test_import_error_names_the_extra():
    """Without Dask, importing lowprec.dask says how to install it (and
    import lowprec does not need Dask)."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['dask'] = None; import lowprec\n"
            "try:\n    import lowprec.dask\nexcept ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert "pip install 'lowprec[dask]'" in out


def test_c_and_fused_accumulator():
    """c= with K in one chunk goes to each tile's NumPy call ("fast" also
    across K chunks); a FusedAccumulator needs K in one chunk."""
    a, b = _operands("e4m3")
    c = RNG.normal(size=(M, N)).astype(np.float32)
    A1 = da.from_array(a, chunks=(10, -1))
    B1 = da.from_array(b, chunks=(-1, 10))
    kw = dict(a_format="e4m3", b_format="e4m3")
    for acc in ("exact", "fp32"):
        _same(lpd.scaled_matmul(A1, B1, accumulate=acc, c=c,
                                **kw).compute(),
              lp.scaled_matmul(a, b, accumulate=acc, c=c, **kw))
    A = da.from_array(a, chunks=(10, 40))
    B = da.from_array(b, chunks=(40, 10))
    with pytest.raises(ValueError, match="c="):
        lpd.scaled_matmul(A, B, accumulate="exact", c=c, **kw)
    np.testing.assert_allclose(
        lpd.scaled_matmul(A, B, accumulate="fast", c=c, **kw).compute(),
        lp.scaled_matmul(a, b, accumulate="fast", c=c, **kw),
        rtol=1e-5, atol=1e-4)
    model = lp.FusedAccumulator(4, 25, out_bits=11, accumulator="float16")
    ref = lp.scaled_matmul(a, b, accumulate=model, **kw)
    got = lpd.scaled_matmul(A1, B1, accumulate=model, **kw).compute()
    _same(got, ref)
    with pytest.raises(ValueError, match="FusedAccumulator"):
        lpd.scaled_matmul(A, B, accumulate=model, **kw)
    e = lpd.scaled_matmul(da.from_array(a[:, :0]), da.from_array(b[:0]),
                          accumulate="fp32", c=c, **kw).compute()
    _same(e, lp.scaled_matmul(a[:, :0], b[:0], accumulate="fp32", c=c,
                              **kw))
