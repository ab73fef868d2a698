"""lowprec on Dask arrays (API.md section 10): encode, decode, quantize,
quantize_blocks and scaled_matmul, chunk by chunk, bit-identical to the
NumPy call on the whole (computed) array for every chunking.

* Element-wise functions run the NumPy function on each chunk.  Stochastic
  rounding keys each element's random draw on (seed, flat index in the
  whole array): each chunk passes its index map (lowprec.convert.index_map,
  the runs of whole-array flat indices its elements hold) to the kernels.
  seed=None draws one seed for the whole array when the graph is built.
* quantize_blocks rechunks along the blocked axes so that no block
  straddles two chunks, and returns a :class:`BlockTensor` of Dask arrays
  (codes, scales, tensor_scale); ``.compute()`` gives ``lp.BlockTensor``.
  The nvfp4 tensor amax is a reduction over every chunk.
* scaled_matmul maps chunks along M and N directly.  Along K: blocked
  scales need K chunks that hold whole blocks (a and b are rechunked so);
  each chunk yields its blocks' scaled products t_b = R32(p_b * s_b),
  which a chain of small tasks adds in block order.  Unblocked "exact"
  adds exact partial sums (float64 where the formats guarantee exactness,
  else fixed-point limbs in int64) and rounds once at the end; "fast"
  adds float32 partial products; "fp32" and Accumulators, one chain over
  K in order, run a tile's K chunks in sequence, each starting from the
  previous chunk's accumulator; a FusedAccumulator needs K in one chunk.

docs/dask.md has the rules and examples.
"""
from __future__ import annotations

import importlib
import secrets

try:
    import dask
    import dask.array as da
    from dask import delayed
except ImportError as exc:                      # pragma: no cover
    raise ImportError("lowprec.dask needs Dask: pip install "
                      "'lowprec[dask]' (dask[array] and distributed)"
                      ) from exc

import ml_dtypes
import numpy as np

from . import blocks as _blocks
from ._clib import lib
from ._options import check_rounding
from .formats import IntFormat, get_format

# the module (the package attribute lowprec.convert is the function
# lp.convert)
_convert = importlib.import_module("lowprec.convert")

__all__ = ["encode", "decode", "quantize", "quantize_blocks",
           "scaled_matmul", "BlockTensor"]

_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)


# -- helpers -----------------------------------------------------------------

def _as_dask(x):
    """x as a Dask array (NumPy and array-likes as one chunk)."""
    if isinstance(x, da.Array):
        return x
    return da.from_array(np.asarray(x), chunks=-1)


def _no_out(out):
    if out is not None:
        raise TypeError("out= is not supported on Dask arrays (their "
                        "results are new lazy arrays); got "
                        f"{type(out).__name__}")


def _fix_seed(rounding, seed):
    """One seed for the whole array: seed=None with stochastic rounding
    draws it now, at graph construction (every chunk gets it)."""
    if seed is None and check_rounding(rounding) == lib.LP_SR:
        return secrets.randbits(64)
    return seed


def _is_array_arg(v):
    return v is not None and (isinstance(v, da.Array) or np.ndim(v) > 0)


def _aligned(v, x):
    """An array argument (scale, zero_point) broadcast to x and chunked as
    x (a NumPy array that does not broadcast raises the NumPy function's
    error on the first chunk; here: ValueError naming both shapes)."""
    d = v if isinstance(v, da.Array) else da.from_array(np.asarray(v),
                                                         chunks=-1)
    try:
        shape = np.broadcast_shapes(d.shape, x.shape)
    except ValueError:
        raise ValueError(f"an array argument of shape {d.shape} does not "
                         f"broadcast to x of shape {x.shape}") from None
    if shape != x.shape:
        raise ValueError(f"an array argument of shape {d.shape} does not "
                         f"broadcast to x of shape {x.shape}")
    return da.broadcast_to(d, x.shape).rechunk(x.chunks)


def _location(block_info):
    info = block_info[0]
    offset = tuple(lo for lo, _ in info["array-location"])
    return offset, tuple(info["shape"])


def _chunk_index(chunk, block_info):
    offset, shape = _location(block_info)
    return _convert.index_map(offset, chunk.shape, shape)


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype)


def _elementwise(kernel, x, arrays, dtype, kwargs):
    """map_blocks of kernel(chunk, *array_chunks, index=, **kwargs) over
    x; `arrays` (name -> Dask array chunked as x) pass as keywords."""
    names = list(arrays)

    def run(chunk, *extra, block_info=None):
        kw = dict(kwargs)
        kw.update(zip(names, extra))
        return kernel(chunk, index=_chunk_index(chunk, block_info), **kw)
    return da.map_blocks(run, x, *[arrays[n] for n in names], dtype=dtype,
                         meta=_meta(x.ndim, dtype))


def _split_array_args(x, **args):
    """(scalar keyword arguments, array ones aligned to x)."""
    scalars, arrays = {}, {}
    for k, v in args.items():
        if _is_array_arg(v):
            arrays[k] = _aligned(v, x)
        else:
            scalars[k] = v
    return scalars, arrays


# -- conversion ---------------------------------------------------------------

def encode(x, fmt, *, rounding="nearest_even", saturate=False,
           subnormals=True, scale=None, zero_point=None, seed=None,
           rbits=None, out=None, backend="auto") -> "da.Array":
    """lp.encode on a Dask array: codes of fmt, chunked as x.

    Bit-identical to ``lp.encode(x.compute(), ...)`` for every chunking,
    stochastic rounding included (each chunk keys on its elements' flat
    indices in the whole array; seed=None draws one seed for the whole
    array now).  scale / zero_point may be scalars, NumPy or Dask arrays
    broadcastable to x.  Errors in the arguments are raised here, those
    that depend on the data (NaN into a format without NaN) at compute
    time, counting the chunk's values.  out= is not supported (TypeError).

    Example:
        >>> import dask.array as da, lowprec.dask as lpd
        >>> x = da.linspace(-1, 1, 10, chunks=4)
        >>> lpd.encode(x, "e4m3", rounding="sr", seed=1).compute().dtype
        dtype('uint8')
    """
    _no_out(out)
    x = _as_dask(x)
    fmt = get_format(fmt)
    seed = _fix_seed(rounding, seed)
    scalars, arrays = _split_array_args(x, scale=scale,
                                        zero_point=zero_point)
    kw = dict(rounding=rounding, saturate=saturate, subnormals=subnormals,
              seed=seed, rbits=rbits, backend=backend, **scalars)
    # checks every argument (and x's dtype) now, on an empty array
    _convert.encode(_meta(x.ndim, x.dtype), fmt, **kw)
    return _elementwise(_encode_chunk, x, arrays, fmt.code_dtype,
                        dict(kw, fmt=fmt))


def _encode_chunk(chunk, *, fmt, index, **kw):
    return _convert._encode(chunk, fmt, index=index, **kw)


def decode(codes, fmt, *, dtype=np.float32, scale=None, zero_point=None,
           out=None, backend="auto") -> "da.Array":
    """lp.decode on a Dask array of codes: values in dtype, chunked as
    codes (bit-identical to the NumPy call; no randomness involved).

    Example:
        >>> import numpy as np, dask.array as da, lowprec.dask as lpd
        >>> c = da.from_array(np.array([0x38, 0x40], np.uint8), chunks=1)
        >>> lpd.decode(c, "e4m3").compute()
        array([1., 2.], dtype=float32)
    """
    _no_out(out)
    c = _as_dask(codes)
    fmt = get_format(fmt)
    scalars, arrays = _split_array_args(c, scale=scale,
                                        zero_point=zero_point)
    kw = dict(dtype=dtype, backend=backend, **scalars)
    res = _convert.decode(_meta(c.ndim, c.dtype), fmt, **kw)
    return _elementwise(_decode_chunk, c, arrays, res.dtype,
                        dict(kw, fmt=fmt))


def _decode_chunk(chunk, *, fmt, index, **kw):
    return _convert.decode(chunk, fmt, **kw)


def quantize(x, fmt, *, rounding="nearest_even", saturate=False,
             subnormals=True, scale=None, zero_point=None, seed=None,
             rbits=None, out=None, backend="auto",
             **block_args) -> "da.Array":
    """lp.quantize (fake quantization) on a Dask array, chunked as x; with
    a block format, quantize_blocks(...).dequantize(x's dtype) (x rechunked
    along the blocked axes: see quantize_blocks).  Bit-identical to the
    NumPy call for every chunking, stochastic rounding included.

    Example:
        >>> import dask.array as da, lowprec.dask as lpd
        >>> x = da.random.default_rng(0).normal(size=(64, 64), chunks=24)
        >>> lpd.quantize(x, "bf16").compute().dtype
        dtype('float64')
    """
    _no_out(out)
    x = _as_dask(x)
    seed = _fix_seed(rounding, seed)
    if _blocks.is_block_format(fmt):
        # checks the combination as lp.quantize does
        _convert.quantize(_meta(x.ndim, x.dtype), fmt, rounding=rounding,
                          saturate=saturate, subnormals=subnormals,
                          scale=scale, zero_point=zero_point, seed=seed,
                          rbits=rbits, backend=backend, **block_args)
        dt = x.dtype if x.dtype.kind == "f" or x.dtype == _blocks.BFLOAT16 \
            else np.dtype(np.float64)
        return quantize_blocks(x, fmt, rounding=rounding, seed=seed,
                               **block_args).dequantize(dt)
    fmt = get_format(fmt)
    scalars, arrays = _split_array_args(x, scale=scale,
                                        zero_point=zero_point)
    kw = dict(rounding=rounding, saturate=saturate, subnormals=subnormals,
              seed=seed, rbits=rbits, backend=backend, **scalars)
    res = _convert.quantize(_meta(x.ndim, x.dtype), fmt, **block_args, **kw)
    return _elementwise(_quantize_chunk, x, arrays, res.dtype,
                        dict(kw, fmt=fmt))


def _quantize_chunk(chunk, *, fmt, index, **kw):
    return _convert._quantize(chunk, fmt, index=index, **kw)


# -- block-scaled quantization ------------------------------------------------

def _block_chunks(chunks, b, L):
    """Chunk sizes along an axis of length L whose boundaries are those of
    `chunks` moved up to multiples of the block b (merging where two
    meet), so that no block straddles two chunks."""
    bounds, pos = set(), 0
    for c in chunks:
        pos += c
        bounds.add(min(-(-pos // b) * b, L))
    edges = [0] + sorted(bounds)
    sizes = tuple(e1 - e0 for e0, e1 in zip(edges, edges[1:]) if e1 > e0)
    return sizes or (0,)


class BlockTensor:
    """quantize_blocks' result on a Dask array: codes, scales (Dask arrays,
    chunked so that the chunk of scales of a chunk of codes covers its
    blocks), tensor_scale (a 0-d Dask float32 array), format, axis and
    shape as lp.BlockTensor.  ``compute()`` gives the lp.BlockTensor of
    the NumPy call; ``dequantize(dtype)`` the values as a Dask array;
    lowprec.dask.scaled_matmul takes it as an operand."""

    def __init__(self, parts, codes, scales, tensor_scale, fmt, axis):
        self._parts = parts            # object array of delayed lp.BlockTensor
        self.codes = codes
        self.scales = scales
        self.tensor_scale = tensor_scale
        self.format = fmt
        self.axis = axis
        self.shape = codes.shape

    def __repr__(self):
        return (f"lowprec.dask.BlockTensor(shape={self.shape}, "
                f"format={self.format!r}, chunks={self.codes.chunksize})")

    def compute(self, **kwargs) -> _blocks.BlockTensor:
        """The lp.BlockTensor (NumPy arrays); kwargs go to dask.compute."""
        codes, scales, ts = dask.compute(self.codes, self.scales,
                                         self.tensor_scale, **kwargs)
        return _blocks.BlockTensor(codes, scales, ts, self.format,
                                   self.axis)

    def dequantize(self, dtype=np.float32) -> "da.Array":
        """element * scale (* tensor_scale) rounded once to dtype, as a
        Dask array chunked as codes (lp.BlockTensor.dequantize per chunk)."""
        dtype = np.dtype(dtype)
        if dtype not in _blocks._OUT_DTYPES:
            raise TypeError(f"dequantize produces float32, float64, float16 "
                            f"or bfloat16, not {dtype}")
        return _assemble(self._parts, lambda bt: bt.dequantize(dtype),
                         self.codes.chunks, dtype)


def _assemble(parts, fn, chunks, dtype):
    """The Dask array of fn(part) for every part (one per chunk)."""
    def build(idx):
        if len(idx) == parts.ndim:
            shape = tuple(chunks[d][i] for d, i in enumerate(idx))
            return da.from_delayed(delayed(fn)(parts[idx]),
                                   shape, dtype=dtype,
                                   meta=_meta(len(shape), dtype))
        return [build(idx + (i,)) for i in range(parts.shape[len(idx)])]
    if parts.ndim == 0:
        return da.from_delayed(delayed(fn)(parts[()]), (),
                               dtype=dtype, meta=_meta(0, dtype))
    return da.block(build(()))


def _chunk_amax(chunk):
    a, in_type = _blocks._input(chunk)
    return _blocks._tensor_amax(a, in_type)


def _tensor_amax(amaxes):
    """The whole tensor's amax as tensor_amax= takes it: NaN or inf (which
    make the nvfp4 tensor factor S = 1, as does 0) become 0."""
    t = float("nan") if any(np.isnan(v) for v in amaxes) else \
        max(amaxes, default=0.0)
    return t if np.isfinite(t) else 0.0


def _blocks_chunk(chunk, offset, shape, fmt, kw, tensor_amax):
    index = _convert.index_map(offset, chunk.shape, shape)
    return _blocks._quantize_blocks(chunk, fmt, tensor_amax=tensor_amax,
                                    index=index, **kw)


def quantize_blocks(x, fmt, *, block=None, axis=-1, scale_format=None,
                    scale_rule=None, tensor_amax=None,
                    rounding="nearest_even", seed=None) -> BlockTensor:
    """lp.quantize_blocks on a Dask array; returns a lowprec.dask.BlockTensor
    whose ``compute()`` is bit-identical to the NumPy call for every
    chunking, stochastic rounding included.

    x is rechunked along the blocked axes (each chunk boundary moved up to
    a multiple of the block) so that no block straddles two chunks; the
    other axes keep their chunks.  Two-level formats (nvfp4) take the
    tensor amax from a reduction over every chunk unless tensor_amax= is
    given.  seed=None with stochastic rounding draws one seed now.

    Example:
        >>> import dask.array as da, lowprec.dask as lpd
        >>> x = da.random.default_rng(0).normal(size=(8, 100), chunks=30)
        >>> bt = lpd.quantize_blocks(x, "mxfp4")
        >>> bt.codes.chunks[1], bt.scales.shape
        ((32, 32, 32, 4), (8, 4))
    """
    x = _as_dask(x)
    seed = _fix_seed(rounding, seed)
    kw = dict(block=block, axis=axis, scale_format=scale_format,
              scale_rule=scale_rule, rounding=rounding, seed=seed)
    # every argument checked now; the format after overrides and the axes
    probe = _blocks.quantize_blocks(_meta(x.ndim, x.dtype), fmt,
                                    tensor_amax=tensor_amax, **kw)
    bf = probe.format
    blk = bf.block
    nd = x.ndim
    if isinstance(blk, tuple):
        axes, sizes = list(range(nd - len(blk), nd)), list(blk)
    else:
        axes, sizes = [int(probe.axis)], [blk]  # type: ignore[arg-type]
    chunks = list(x.chunks)
    for ax, b in zip(axes, sizes):
        chunks[ax] = _block_chunks(chunks[ax], b, x.shape[ax])
    x = x.rechunk(tuple(chunks))
    if bf.two_level and tensor_amax is None:
        parts_in = x.to_delayed()
        T = delayed(_tensor_amax)([delayed(_chunk_amax)(p)
                                   for p in parts_in.reshape(-1)])
    else:
        T = tensor_amax
    offsets = [np.cumsum((0,) + c[:-1]) for c in x.chunks]
    xd = x.to_delayed()
    # the block format after overrides, given in full to every chunk
    ckw = dict(rounding=rounding, seed=seed, axis=axis)
    parts = np.empty(xd.shape, object)
    for idx in np.ndindex(*xd.shape):
        off = tuple(int(offsets[d][i]) for d, i in enumerate(idx))
        parts[idx] = delayed(_blocks_chunk)(
            xd[idx], off, x.shape, bf, ckw, T)
    codes = _assemble(parts, lambda bt: bt.codes, x.chunks,
                      probe.codes.dtype)
    schunks = list(x.chunks)
    for ax, b in zip(axes, sizes):
        schunks[ax] = tuple(-(-c // b) for c in x.chunks[ax])
    scales = _assemble(parts, lambda bt: bt.scales, tuple(schunks),
                       probe.scales.dtype)
    first = parts[(0,) * nd] if nd else parts[()]
    ts = da.from_delayed(delayed(lambda bt: bt.tensor_scale)(first), (),
                         dtype=np.float32, meta=_meta(0, np.float32))
    return BlockTensor(parts, codes, scales, ts, bf, probe.axis)


# -- scaled matrix multiply ---------------------------------------------------

def _mm():
    from . import matmul
    from .matmul import _args, _exact, _geometry, _kernels, _values
    return matmul, _args, _exact, _geometry, _kernels, _values


def _scale_f32(s, name):
    """float32 values of a scale chunk, checked as scaled_matmul checks."""
    return _mm()[1]._scale_values(s, name)[0]


def _tile_whole(a, b, sa, sb, fa, fb, block, mode, c=None):
    """One output tile whose K is one chunk: the NumPy call itself."""
    return _mm()[0]._scaled_matmul(a, b, a_format=fa, b_format=fb,
                                   a_scale=sa, b_scale=sb, block=block,
                                   accumulate=mode, c=c)


def _tile_blocks(a, b, sa, sb, fa, fb, bk, mode):
    """The scaled products t_b = R32(p_b * s_b) of the K-blocks of one K
    chunk (nb_c, M, N): each the NumPy call on that block alone, whose
    result with one block is exactly t_b."""
    mm = _mm()[0]
    nbc = a.shape[1] // bk
    out = np.empty((nbc, a.shape[0], b.shape[1]), np.float32)
    for q in range(nbc):
        k0, k1 = q * bk, (q + 1) * bk
        out[q] = mm._scaled_matmul(
            np.ascontiguousarray(a[:, k0:k1]), np.ascontiguousarray(b[k0:k1]),
            a_format=fa, b_format=fb, a_scale=sa[:, q:q + 1],
            b_scale=sb[q:q + 1, :], accumulate=mode)
    return out


def _fold(acc, t):
    """acc = t_0 for the first block, then acc = R32(acc + t_b) in block
    order (the epilogue of API.md section 3; float32 addition rounds to
    nearest even, IEEE NaN and inf)."""
    start = 0
    if acc is None:
        acc, start = t[0].copy(), 1
    for q in range(start, t.shape[0]):
        acc += t[q]
    return acc


def _operand_values(a, fa):
    mm, _args, _exact, _geometry, _kernels, _values = _mm()
    codes, _ = _args._operand(a, fa, "a")
    return _values._decode(codes, fa, np.float64)


def _exact_part(a, b, fa, fb, kind, lo, nlimbs):
    """The exact partial sums of one K chunk in a form that adds without
    rounding: float64 (kind "f64": the formats keep every partial sum of
    the whole K exact in float64) or int64 limbs (lp_exact_dot_limbs);
    and the IEEE value of its non-finite products (0 where none: inf, -inf
    or NaN add order-free across chunks, as _patch_specials sums them)."""
    _, _, _exact, _, _kernels, _ = _mm()
    A, B = _operand_values(a, fa), _operand_values(b, fb)
    M, K = A.shape
    N = B.shape[1]
    special = np.zeros((M, N), np.float32)
    fin_a, fin_b = np.isfinite(A), np.isfinite(B)
    if not (fin_a.all() and fin_b.all()):
        _exact._patch_specials(special, A, B)
        A, B = np.where(fin_a, A, 0.0), np.where(fin_b, B, 0.0)
    A, B = np.ascontiguousarray(A), np.ascontiguousarray(B)
    if kind == "f64":
        p = _kernels._gemm_f64(A, B, None, None, 0, raw=True,
                               isa=lib.LP_ISA_AUTO)
        return p, special
    Bt = np.ascontiguousarray(B.T)
    limbs = np.empty((M, N, nlimbs), np.int64)
    pa, pbt = _kernels._ptr(A, "double *"), _kernels._ptr(Bt, "double *")
    pl = _kernels._ptr(limbs, "int64_t *")

    def kernel(r0, r1):
        return lib.lp_exact_dot_limbs(pa, pbt, M, N, K, 0, K, lo, nlimbs, pl,
                                      r0, r1)
    if _kernels._split_rows(kernel, M, M * N * K * 8, align=1):
        raise AssertionError("exact accumulator: a product did not fit")
    return limbs, special


def _exact_merge(x, y):
    """Exact partial sums of two K chunks added: float64 (exact by the
    formats' bound) or int64 limbs (exact), specials by IEEE addition."""
    with np.errstate(invalid="ignore"):
        return x[0] + y[0], x[1] + y[1]


def _exact_finish(part, sa, sb, kind, lo, nlimbs):
    """p = R32(exact sum) once, the specials patched in, then the epilogue
    of one block: R32(p * R32(a_scale * b_scale))."""
    p, special = part
    if kind == "f64":
        p32 = p.astype(np.float32)
    else:
        M, N = special.shape
        p32 = np.empty((M, N), np.float32)
        lib.lp_limbs_to_f32(_mm()[4]._ptr(p, "int64_t *"), M * N, nlimbs,
                            lo, _mm()[4]._ptr(p32, "float *"))
    # the NaN of the NumPy call's patch is np.nan (positive), whatever the
    # sign of the NaN an inf + -inf between chunks gave here
    special[np.isnan(special)] = np.nan
    p32 = np.where(special == 0, p32, special)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        s = _scale_f32(sa, "a_scale") * _scale_f32(sb, "b_scale")
        return (p32 * s).astype(np.float32)


def _chain_step(a, b, fa, fb, mode, acc):
    """The chain of "fp32" / an Accumulator over one K chunk, started from
    acc (the previous chunk's float32 result, or the user's c; None: +0):
    the NumPy call with c=acc continues the chain step for step."""
    return _mm()[0]._scaled_matmul(a, b, a_format=fa, b_format=fb,
                                   accumulate=mode, c=acc)


def _chain_finish(p, sa, sb, c, a_parts, b_parts, fa, fb, mode):
    """The epilogue of one block, R32(p * R32(a_scale * b_scale)); c
    needs unit scales (the NumPy call's check).  A NaN result: the NumPy
    call's fused multiply-add kernel (no c) and its c= path give NaNs of
    different signs, so a tile holding one is computed again over all of
    K (the NumPy call on the tile's rows and columns)."""
    if np.isnan(p).any():
        return _tile_whole(np.concatenate(a_parts, axis=1),
                           np.concatenate(b_parts, axis=0), sa, sb, fa, fb,
                           None, mode, c)
    with_c = c is not None
    s = _scale_f32(sa, "a_scale") * _scale_f32(sb, "b_scale")
    if np.all(s == 1):
        return p
    if with_c:
        raise ValueError("c needs unit scales: D = A*B + C adds c to the "
                         "unscaled accumulator, so a_scale and b_scale must "
                         "be 1 when c is given")
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return (p * s).astype(np.float32)


def _fast_part(a, b, fa, fb):
    return _mm()[0]._scaled_matmul(a, b, a_format=fa, b_format=fb,
                                   accumulate="fast")


def _fast_finish(p, sa, sb, c=None):
    s = _scale_f32(sa, "a_scale") * _scale_f32(sb, "b_scale")
    if c is not None:                 # "fast" adds c after the product
        with np.errstate(over="ignore", invalid="ignore"):
            return (p + np.asarray(c, np.float32)).astype(np.float32)
    if np.all(s == 1):
        return p
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        return (p * s).astype(np.float32)


def _add(x, y):
    with np.errstate(over="ignore", invalid="ignore"):
        return x + y


def _tree(fn, items):
    """Pairwise reduction of delayed items by fn (order-free merges)."""
    while len(items) > 1:
        nxt = [delayed(fn)(items[i], items[i + 1])
               for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def _k_chunks(ka, kb, bk, K):
    """One K chunking for a and b: the union of their boundaries, moved up
    to multiples of the block bk when the product is blocked."""
    bounds, pos = set(), 0
    for chunks in (ka, kb):
        pos = 0
        for c in chunks:
            pos += c
            bounds.add(pos)
    sizes, prev = [], 0
    for e in sorted(bounds):
        sizes.append(e - prev)
        prev = e
    sizes = tuple(s for s in sizes if s) or (K,)
    return _block_chunks(sizes, bk, K) if bk else sizes


def _scale_array(s, shape, name, layout):
    """A scale (scalar, NumPy or Dask array) as a Dask array of shape
    `shape` (its dtype kept: float32 values or e8m0 codes)."""
    d = s if isinstance(s, da.Array) else da.from_array(np.asarray(s),
                                                         chunks=-1)
    if d.ndim not in (0,) and d.size != 1 and d.ndim < 2:
        raise ValueError(f"{name} of shape {d.shape} is ambiguous: use a "
                         f"scalar or an array of shape {layout} = {shape}")
    try:
        if np.broadcast_shapes(d.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {d.shape} does not fit the "
                         f"layout {layout} = {shape}") from None
    return da.broadcast_to(d, shape)


def scaled_matmul(a, b, *, a_format=None, b_format=None, a_scale=1.0,
                  b_scale=1.0, block=None, accumulate="fp32",
                  out_format=None, out_scale=None,
                  out_rounding="nearest_even", saturate=True,
                  c=None) -> "da.Array":
    """lp.scaled_matmul on 2-D Dask arrays of codes (or lowprec.dask /
    lp BlockTensors); the result is a Dask array chunked as a along M and
    b along N.

    Chunks along M and N map directly.  Along K, a and b are rechunked to
    common K chunks (holding whole blocks when block= is given); then

    * blocked scales: each K chunk yields the scaled products of its
      blocks, added in block order as section 3 says: every accumulate
      rule gives the bits of the NumPy call;
    * unblocked, "exact": exact partial sums of each K chunk (float64 where
      the formats bound every sum below 2^53 quanta, else fixed-point
      limbs) are added exactly and rounded once: the NumPy call's bits
      for any chunking;
    * unblocked, "fast": float32 partial products added in any order;
    * unblocked, "fp32" or an Accumulator (whose values are float32
      numbers: every built-in format): one chain over K in order, so the
      K chunks run one after the other, each starting from the previous
      one's float32 accumulator (the NumPy call's c=), then the scale
      epilogue R32(p * R32(a_scale * b_scale)): bit-identical;
    * a FusedAccumulator, or an Accumulator of a wider custom format: K
      must be one chunk, else ValueError.

    c (D = A*B + C's accumulator input, NumPy or Dask, broadcast to (M, N)
    and chunked as the result) starts the chain ("fp32", Accumulators), is
    added after the product ("fast"), or goes to each tile's NumPy call
    when K is one chunk; blocked or "exact" products with K in several
    chunks raise ValueError for it.

    Scales may be NumPy or Dask arrays (layouts of section 3).  Errors:
    ValueError for operands that are not 2-D, K that differ (naming both
    shapes), the fp32 / Accumulator case above, stochastic Accumulators on
    chunked operands (their draws key on whole-product indices); the
    NumPy call's errors otherwise (data-dependent ones at compute time).

    Example:
        >>> import numpy as np, dask.array as da, lowprec as lp
        >>> import lowprec.dask as lpd
        >>> rng = np.random.default_rng(0)
        >>> a = lp.encode(rng.normal(size=(64, 96)), "e4m3")
        >>> b = lp.encode(rng.normal(size=(96, 32)), "e4m3")
        >>> da_ = da.from_array(a, chunks=(32, 40))
        >>> db = da.from_array(b, chunks=(40, 16))
        >>> r = lpd.scaled_matmul(da_, db, a_format="e4m3", b_format="e4m3",
        ...                       accumulate="exact").compute()
        >>> np.array_equal(r, lp.scaled_matmul(a, b, a_format="e4m3",
        ...     b_format="e4m3", accumulate="exact"))
        True
    """
    if isinstance(a, (BlockTensor, _blocks.BlockTensor)) or isinstance(
            b, (BlockTensor, _blocks.BlockTensor)):
        if c is not None:
            raise ValueError("c needs unit scales: BlockTensor operands "
                             "carry block scales, so c is not taken")
        return _block_matmul(a, b, accumulate, out_format, out_scale,
                             out_rounding, saturate)
    mm, _args, _exact, _geometry, _kernels, _values = _mm()
    a, b = _as_dask(a), _as_dask(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"lowprec.dask.scaled_matmul takes 2-D operands: "
                         f"a has shape {a.shape}, b has shape {b.shape}")
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"matmul: a has shape {a.shape} and b has shape "
                         f"{b.shape}; the inner dimensions {K} and {K2} "
                         "differ")
    _, fa = _args._operand(_meta(2, a.dtype), a_format, "a")
    _, fb = _args._operand(_meta(2, b.dtype), b_format, "b")
    mode = _args._check_accumulate(accumulate)
    _args._check_output(out_format, out_scale, out_rounding, saturate,
                        (M, N))
    if block is not None:
        block = _args._check_block(block)
    sa = a_scale if isinstance(a_scale, da.Array) else np.asarray(a_scale)
    sb = b_scale if isinstance(b_scale, da.Array) else np.asarray(b_scale)
    if block is None:
        ka = sa.shape[-1] if sa.ndim >= 2 else 1
        kb = sb.shape[-2] if sb.ndim >= 2 else 1
        if max(ka, kb) > 1:
            if sa.dtype == _E8M0 or sb.dtype == _E8M0:
                block = (32,)          # MX: e8m0 scales of 32-blocks
            else:
                raise ValueError(
                    f"a_scale of shape {sa.shape} and b_scale of shape "
                    f"{sb.shape} vary along K: give block=(bk,) for "
                    "blockwise scales")
    bk = K if block is None else block[0]
    bn = 1 if block is None or len(block) == 1 else block[1]
    if K and K % bk:
        raise ValueError(f"block size {bk} does not divide K = {K}")
    if N % bn:
        raise ValueError(f"block size bn = {bn} does not divide N = {N}")
    nb = K // bk if K else 1
    if block is not None and nb == 1:
        block = None
    As = _scale_array(sa, (M, nb), "a_scale",
                      "(M, K/bk)" if block else "(M, 1)")
    Bs = _scale_array(sb, (nb, N // bn), "b_scale",
                      "(K/bk, N/bn)" if bn > 1 else
                      "(K/bk, N)" if block else "(1, N)")
    if bn > 1:
        Bs = da.repeat(Bs, bn, axis=1)
    if M == 0 or N == 0 or K == 0:
        # nothing to split: the NumPy call on the (empty) operands
        t = delayed(_tile_whole)(a, b, As, Bs, fa, fb, block and (bk,),
                                 mode, c)
        probe = _tile_whole(np.zeros((0, 0), a.dtype),
                            np.zeros((0, 0), b.dtype), 1.0, 1.0, fa, fb,
                            None, mode)
        res = da.from_delayed(t, (M, N), dtype=probe.dtype,
                              meta=_meta(2, probe.dtype))
        return _output(res, out_format, out_scale, out_rounding, saturate)
    kch = _k_chunks(a.chunks[1], b.chunks[0], bk if nb > 1 else 0, K)
    nk = len(kch)
    if isinstance(mode, mm.Accumulator) and \
            check_rounding(mode.rounding) == lib.LP_SR and (
                a.numblocks[0] > 1 or b.numblocks[1] > 1 or nk > 1):
        raise ValueError("a stochastic Accumulator draws on indices of the "
                         "whole product: give a and b as one chunk each")
    fused = not isinstance(mode, (str, mm.Accumulator))
    if nk > 1 and fused:
        raise ValueError(
            f"a FusedAccumulator chains its steps over k in order, so its "
            f"bits depend on where K is cut; a is chunked {a.chunks[1]} and "
            f"b {b.chunks[0]} along K = {K}: rechunk K to one chunk")
    chain = nb == 1 and (mode == "fp32" or isinstance(
        mode, mm.Accumulator) and _geometry._exact_in_f32(mode.format))
    if nk > 1 and c is not None and mode != "fast" and not chain:
        raise ValueError(
            f"c= with K in several chunks ({kch}) is taken by "
            "accumulate='fast', 'fp32' and Accumulators without blocks; "
            "rechunk K to one chunk")
    if nk > 1 and nb == 1 and mode not in ("exact", "fast") and not chain:
        name = mode if isinstance(mode, str) else repr(mode)
        raise ValueError(
            f"accumulate={name} chains one rounding per step over k in "
            f"order, and its values are not all float32 numbers, so the "
            f"chain cannot pass from one K chunk to the next; a is "
            f"chunked {a.chunks[1]} and b {b.chunks[0]} along K = {K}: "
            "rechunk K to one chunk, use block= with K chunks of whole "
            "blocks, or accumulate='exact'")
    a = a.rechunk((a.chunks[0], kch))
    b = b.rechunk((kch, b.chunks[1]))
    sch = tuple(c // bk for c in kch) if nb > 1 else (1,)
    As = As.rechunk((a.chunks[0], sch))
    Bs = Bs.rechunk((sch, b.chunks[1]))
    ad, bd = a.to_delayed(), b.to_delayed()
    cd = None
    if c is not None:
        cdd = c if isinstance(c, da.Array) else da.from_array(
            np.asarray(c), chunks=-1)
        try:
            cdd = da.broadcast_to(cdd, (M, N))
        except ValueError:
            raise ValueError(f"c of shape {cdd.shape} does not broadcast to "
                             f"the output ({M}, {N})") from None
        cd = cdd.rechunk((a.chunks[0], b.chunks[1])).to_delayed()
    # the result's dtype (float16 for a float16 FusedAccumulator)
    out_dtype = mm._scaled_matmul(
        np.zeros((1, 1), a.dtype), np.zeros((1, 1), b.dtype), a_format=fa,
        b_format=fb, accumulate=mode).dtype
    asd, bsd = As.to_delayed(), Bs.to_delayed()
    if nb == 1 and nk > 1 and mode == "exact":
        wa, wb = _geometry._fmt_width(fa), _geometry._fmt_width(fb)
        kind = "f64" if wa + wb + _geometry._clog2(K) <= 53 else "limbs"
        ta, qa = _geometry._fmt_range(fa)
        tb, qb = _geometry._fmt_range(fb)
        lo = qa + qb
        nlimbs = ((ta + 1) + (tb + 1) - lo + _geometry._clog2(K + 1)
                  + 2) // 32 + 4
        if kind == "limbs" and (nlimbs > 64 or K >= 1 << 30):
            raise ValueError(f"K = {K} with formats {fa.name} and "
                             f"{fb.name} is too long for the exact "
                             "accumulator")
    tiles = np.empty((len(a.chunks[0]), len(b.chunks[1])), object)
    for i in range(tiles.shape[0]):
        for j in range(tiles.shape[1]):
            if nk == 1:
                t = delayed(_tile_whole)(ad[i, 0], bd[0, j], asd[i, 0],
                                         bsd[0, j], fa, fb,
                                         block and (bk,), mode,
                                         None if cd is None else cd[i, j])
            elif chain:
                t = None if cd is None else cd[i, j]
                for q in range(nk):
                    t = delayed(_chain_step)(ad[i, q], bd[q, j], fa, fb,
                                             mode, t)
                t = delayed(_chain_finish)(
                    t, asd[i, 0], bsd[0, j], None if cd is None else
                    cd[i, j], list(ad[i, :]), list(bd[:, j]), fa, fb, mode)
            elif nb > 1:
                t = None
                for q in range(nk):
                    part = delayed(_tile_blocks)(ad[i, q], bd[q, j],
                                                 asd[i, q], bsd[q, j], fa,
                                                 fb, bk, mode)
                    t = delayed(_fold)(t, part)
            elif mode == "exact":
                parts = [delayed(_exact_part)(ad[i, q], bd[q, j], fa, fb,
                                              kind, lo, nlimbs)
                         for q in range(nk)]
                t = delayed(_exact_finish)(_tree(_exact_merge, parts),
                                           asd[i, 0], bsd[0, j], kind, lo,
                                           nlimbs)
            else:
                parts = [delayed(_fast_part)(ad[i, q], bd[q, j], fa, fb)
                         for q in range(nk)]
                t = delayed(_fast_finish)(_tree(_add, parts), asd[i, 0],
                                          bsd[0, j],
                                          None if cd is None else cd[i, j])
            tiles[i, j] = da.from_delayed(
                t, (a.chunks[0][i], b.chunks[1][j]), dtype=out_dtype,
                meta=_meta(2, out_dtype))
    res = da.block(tiles.tolist())
    return _output(res, out_format, out_scale, out_rounding, saturate)


def _output(res, out_format, out_scale, out_rounding, saturate):
    if out_format is None:
        return res
    return encode(res, out_format, scale=out_scale, rounding=out_rounding,
                  saturate=saturate)


def _bt_parts(t, name):
    """(codes, scales, tensor_scale, format, axis) of a BlockTensor
    operand as Dask arrays (an lp.BlockTensor as single chunks)."""
    if isinstance(t, BlockTensor):
        return t.codes, t.scales, t.tensor_scale, t.format, t.axis
    if isinstance(t, _blocks.BlockTensor):
        return (da.from_array(np.asarray(t.codes), chunks=-1),
                da.from_array(np.asarray(t.scales), chunks=-1),
                da.from_array(np.asarray(t.tensor_scale, np.float32)),
                t.format, t.axis)
    raise TypeError(f"scaled_matmul with a BlockTensor takes two: {name} is "
                    f"{type(t).__name__}")


def _mm_scale(s):
    """Block scales as scaled_matmul takes them (blocks._matmul_scale)."""
    if s.dtype == np.float32 or s.dtype == _E8M0:
        return s
    s = s.astype(np.float32)
    s[s == 0] = 1
    return s


def _sign_magnitude(q, bits, dtype):
    q = q.astype(np.int32)
    return np.where(q < 0, (1 << bits) | -q, q).astype(dtype)


def _block_matmul(a, b, accumulate, out_format, out_scale, out_rounding,
                  saturate):
    """scaled_matmul on BlockTensors (lp.scaled_matmul's rules, API.md
    section 8): codes, scales and block through section 3, the tensor
    scales last, NaN for the outputs that take a NaN / inf block."""
    ca, sa, ta, fa_, axa = _bt_parts(a, "a")
    cb, sb, tb, fb_, axb = _bt_parts(b, "b")
    for name, c in (("a", ca), ("b", cb)):
        if c.ndim != 2:
            raise ValueError(f"scaled_matmul on BlockTensors takes 2-D "
                             f"operands; {name} has shape {c.shape}")
    M, K = ca.shape
    K2, N = cb.shape
    if K != K2:
        raise ValueError(f"shapes {ca.shape} and {cb.shape} do not agree "
                         f"along K")
    bm, bka, bn = _blocks.matmul_blocks(fa_.block, axa, fb_.block, axb, K)
    ops = []
    for name, c, el in (("a", ca, fa_.element), ("b", cb, fb_.element)):
        if isinstance(el, IntFormat):
            if not el.signed:
                raise ValueError(f"scaled_matmul on BlockTensors takes "
                                 f"float or signed integer elements; {name} "
                                 f"has {el.name}")
            fp = _blocks._fixed_point_format(el)
            c = c.map_blocks(_sign_magnitude, el.bits, fp.code_dtype,
                             dtype=fp.code_dtype)
            ops.append((c, fp))
        else:
            ops.append((c, el))
    f32 = np.dtype(np.float32)
    dt_a = sa.dtype if sa.dtype in (f32, _E8M0) else f32
    dt_b = sb.dtype if sb.dtype in (f32, _E8M0) else f32
    sa = sa.map_blocks(_mm_scale, dtype=dt_a)
    sb = sb.map_blocks(_mm_scale, dtype=dt_b)
    if (dt_a == f32) != (dt_b == f32):
        sa, sb = sa.astype(np.float32), sb.astype(np.float32)
    if bm > 1:
        sa = da.repeat(sa, bm, axis=0)[:M]
    nan_a = da.isnan(sa.astype(np.float32))
    nan_b = da.isnan(sb.astype(np.float32))
    one = np.array(1.0, np.float32).astype(sa.dtype)
    sa = da.where(nan_a, one, sa)
    sb = da.where(nan_b, np.array(1.0, np.float32).astype(sb.dtype), sb)
    nan_rows = nan_a.any(axis=1)
    nan_cols = nan_b.any(axis=0)
    if bn is not None:
        nan_cols = da.repeat(nan_cols, bn)[:N]
    block = (bka,) if bn is None else (bka, bn)
    _mm()[1]._check_output(out_format, out_scale, out_rounding, saturate,
                           (M, N))
    acc = scaled_matmul(ops[0][0], ops[1][0], a_format=ops[0][1],
                        b_format=ops[1][1], a_scale=sa, b_scale=sb,
                        block=block, accumulate=accumulate)
    if fa_.two_level or fb_.two_level:
        ts = ta.astype(np.float32) * tb.astype(np.float32)
        acc = acc * ts
    nan = nan_rows.rechunk(acc.chunks[0])[:, None] | \
        nan_cols.rechunk(acc.chunks[1])[None, :]
    acc = da.where(nan, np.float32(np.nan), acc).astype(np.float32)
    return _output(acc, out_format, out_scale, out_rounding, saturate)
