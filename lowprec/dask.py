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
  adds float32 partial products; "fp32" and Accumulators, whose bits
  depend on the order of one chain over K, need K in one chunk.

docs/dask.md has the rules and examples.
"""
from __future__ import annotations

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
from . import convert as _convert
from ._clib import lib
from ._options import check_rounding
from .formats import IntFormat, get_format

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


# -- conversion ----------------------------------------------------------------

def encode(x, fmt, *, rounding="nearest_even", saturate=False,
           subnormals=True, scale=None, zero_point=None, seed=None,
           rbits=None, out=None, backend="auto"):
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
           out=None, backend="auto"):
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
             rbits=None, out=None, backend="auto", **block_args):
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


# -- block-scaled quantization ---------------------------------------------------

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

    def dequantize(self, dtype=np.float32):
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
        ((32, 32, 36), (8, 4))
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
        axes, sizes = [probe.axis], [blk]
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
