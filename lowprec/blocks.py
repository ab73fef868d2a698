"""Block-scaled quantization (API.md section 8): MX, NVFP4, FP8 blockwise.

A tensor is cut into blocks along one axis (or 2-D blocks over the last two
axes); each block gets a scale computed from its amax by a scale rule, and
its elements are rounded once to the element format.  The kernel is
lp_quantize_blocks (csrc/blocks.c): one pass per block (amax, scale,
elements through the rounding core), no temporaries of the input's size,
blocks split over the thread pool of lowprec._threads.  docs/blocks.md has
every rule, worked examples and which framework each matches.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

import ml_dtypes
import numpy as np

from . import _validate as val
from ._clib import ffi, lib
from ._interop import ML_FLOAT_DTYPES, as_array
from ._options import (BFLOAT16, attach_random_bits, make_opts,
                       raise_errors)
from ._threads import run_chunked
from .formats import (BlockFormat, FloatFormat, IntFormat, RULES, get_format, recipes,
                      _recipe_of, _scale_kind)

if TYPE_CHECKING:
    from ._typing import (ArrayLike, BlockFormatLike, BlockShape, DTypeLike,
                          FloatArray, FormatLike, IntLike, NDArray, Rounding,
                          Seed)

__all__ = ["BlockFormat", "BlockTensor", "quantize_blocks", "block_scales",
           "recipes", "RULES"]

_RULE_CODE = {"floor": lib.LP_BLOCK_FLOOR, "ceil": lib.LP_BLOCK_CEIL,
              "rceil": lib.LP_BLOCK_RCEIL, "even": lib.LP_BLOCK_EVEN,
              "nvfp4": lib.LP_BLOCK_NVFP4, "decode": lib.LP_BLOCK_DECODE,
              "encode": lib.LP_BLOCK_ENCODE, "pow2": lib.LP_BLOCK_POW2}


def _as_block_format(fmt) -> BlockFormat:
    if isinstance(fmt, BlockFormat):
        return fmt
    if isinstance(fmt, str) and (recipe := _recipe_of(fmt)) is not None:
        return recipe
    el = get_format(fmt)      # an element format: MX defaults
    return BlockFormat(el, 32, "float8_e8m0fnu", "floor")


def _int_shift(el):
    """Integer elements are read as q / 2^(bits - 2) (mxint8: q / 64)."""
    return el.bits - 2 if isinstance(el, IntFormat) else 0


def _ml_dtype(fmt):
    """The ml_dtypes / NumPy dtype holding fmt's codes."""
    if isinstance(fmt, IntFormat):
        return np.dtype(np.int8) if fmt.signed else np.dtype(np.uint8)
    if fmt.name == "float32":
        return np.dtype(np.float32)
    t = getattr(ml_dtypes, fmt.name or "", None)
    return np.dtype(t) if t is not None else np.dtype(np.uint8)


_IN_TYPES = {np.dtype(np.float64): lib.LP_F64,
             np.dtype(np.float32): lib.LP_F32,
             np.dtype(np.float16): lib.LP_F16,
             BFLOAT16: lib.LP_BF16}


def _input(x):
    a = as_array(x)
    dt = a.dtype.newbyteorder("=") if not a.dtype.isnative else a.dtype
    if dt.kind in "iu":
        a = a.astype(np.float64)      # as encode: integers as float64
        dt = a.dtype
    elif dt in ML_FLOAT_DTYPES and dt != BFLOAT16:
        a = a.astype(np.float32)      # float8 / 6 / 4 values: exact
        dt = a.dtype
    if dt not in _IN_TYPES:
        raise TypeError(f"lowprec cannot quantize arrays of dtype "
                        f"{a.dtype}: use float64, float32, float16, an "
                        "ml_dtypes float type or an integer dtype")
    a = np.ascontiguousarray(a.astype(dt, copy=False))
    return a, _IN_TYPES[dt]


class BlockTensor:
    """The result of quantize_blocks: codes (x's shape, an ml_dtypes array
    of the element format, int8 for mxint8), scales (ml_dtypes e8m0 / e4m3
    / ue5m3 or float32, the blocked axes divided by the block rounded up),
    tensor_scale (float32; 1 without a second level), format (the
    BlockFormat after overrides), axis (the blocked axis, or the tuple of
    the last two axes for 2-D blocks) and shape.

    ``np.asarray(bt)`` is ``bt.dequantize()``; ``bt.scales`` can be passed
    to `scaled_matmul` as a_scale / b_scale unchanged, or ``bt`` itself as
    an operand.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> bt = lp.quantize_blocks(np.float32([[0.5, -1.0, 3.0, 10.0]]),
    ...                         "mxfp4", block=4)
    >>> bt.shape, bt.scales.shape, bt.axis
    ((1, 4), (1, 1), 1)
    """

    codes: NDArray[Any]
    scales: NDArray[Any]
    tensor_scale: np.float32
    format: BlockFormat
    axis: Union[int, Tuple[int, ...]]
    shape: Tuple[int, ...]

    def __init__(self, codes: NDArray[Any], scales: NDArray[Any],
                 tensor_scale: float, fmt: BlockFormat,
                 axis: Union[int, Tuple[int, ...]]) -> None:
        self.codes = codes
        self.scales = scales
        self.tensor_scale = np.float32(tensor_scale)
        self.format = fmt
        self.axis = axis
        self.shape = codes.shape

    def __repr__(self) -> str:
        return (f"BlockTensor(shape={self.shape}, format={self.format!r}, "
                f"scales {self.scales.shape} {self.scales.dtype}, "
                f"tensor_scale={float(self.tensor_scale)!r})")

    def _scale_values(self):
        """float64 scale values expanded to the codes' shape."""
        sc = self.scales
        if sc.dtype == np.float32:
            s = sc.astype(np.float64)
        else:
            s = np.asarray(sc.view(np.uint8))
            s = np.asarray(lib_decode(s, self.format.scale_format))
        blk = self.format.block
        nd = self.codes.ndim
        if isinstance(blk, tuple):
            axes = list(range(nd - len(blk), nd))
            sizes = list(blk)
        else:
            axes, sizes = [self.axis], [blk]
        for ax, b in zip(axes, sizes):
            s = np.repeat(s, b, axis=ax)
            s = np.take(s, np.arange(self.codes.shape[ax]), axis=ax)
        return s

    def dequantize(self, dtype: DTypeLike = np.float32) -> FloatArray:
        """element * scale (* tensor_scale), the exact product rounded once
        to dtype (float32, float64, float16 or an ml_dtypes float type, as
        lp.decode); NaN for every element of a NaN / inf block (ValueError
        where dtype has no NaN).

        Parameters
        ----------
        dtype
            float32 (default), float64, float16 or an ml_dtypes float
            type.

        Raises
        ------
        TypeError
            An unsupported dtype.

        Examples
        --------
        >>> import numpy as np, lowprec as lp
        >>> bt = lp.quantize_blocks(np.float32([[0.5, -1.0, 3.0, 10.0]]),
        ...                         "mxfp4", block=4)
        >>> bt.dequantize()
        array([[ 0., -1.,  3.,  8.]], dtype=float32)
        """
        dtype = np.dtype(dtype)
        if dtype not in _OUT_DTYPES:
            raise TypeError(f"dequantize produces float32, float64, float16 "
                            f"or an ml_dtypes float type, not {dtype}")
        el = self.format.element
        v = lib_decode(np.asarray(self.codes).view(el.code_dtype)
                       if not isinstance(el, IntFormat)
                       else np.asarray(self.codes), el)
        if isinstance(el, IntFormat):
            v = v * 2.0 ** -_int_shift(el)
        # element (<= 8 bits) * scale (<= 24 bits) * tensor scale (24 bits)
        # fits 53 bits: the float64 product is exact
        with np.errstate(invalid="ignore"):
            v = v * self._scale_values()
            if self.format.two_level:
                v = v * float(self.tensor_scale)
        return _round_to_dtype(v, dtype)

    def __array__(self, dtype: Optional[DTypeLike] = None,
                  copy: Optional[bool] = None) -> NDArray[Any]:
        v = self.dequantize(np.float32)
        return v if dtype is None else v.astype(dtype)

    def pack(self) -> NDArray[np.uint8]:
        """The codes in the dense layout of lp.pack (sub-byte formats), or
        their bytes (8-bit formats), flattened in C order.

        Examples
        --------
        >>> import numpy as np, lowprec as lp
        >>> bt = lp.quantize_blocks(np.float32([[0.5, -1.0, 3.0, 10.0]]),
        ...                         "mxfp4", block=4)
        >>> bt.pack()
        array([144,  99], dtype=uint8)
        """
        el = self.format.element
        nb = el.bits if isinstance(el, IntFormat) else el.nbits
        raw = np.ascontiguousarray(self.codes).view(np.uint8).reshape(-1)
        if nb >= 8:
            return raw.copy()
        return pack_bits(raw, nb)


def lib_decode(codes, fmt):
    """Exact float64 values of codes (lp_decode over threads).  blocks
    calls the C kernels itself: it sits beneath lowprec.convert, which
    imports it, so imports go one way."""
    fmt = get_format(fmt)
    c = np.ascontiguousarray(np.asarray(codes).view(fmt.code_dtype))
    res = np.empty(c.shape, np.float64)
    n = c.size
    if n:
        cs, bc, br = c.dtype.itemsize, c.ctypes.data, res.ctypes.data

        def kernel(start, stop):
            lib.lp_decode(fmt.struct, ffi.cast("void *", bc + start * cs),
                          stop - start, lib.LP_F64, ffi.NULL, 0,
                          ffi.cast("void *", br + start * 8))
            return 0
        run_chunked(kernel, n)
    return res


_OUT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64),
               np.dtype(np.float16)) + tuple(ML_FLOAT_DTYPES)


def _round_to_dtype(v64, dtype):
    """float64 values rounded once (nearest even) to a float dtype: float16
    and the ml_dtypes types through lp_encode into the format of that name
    (no float32 intermediate; its errors raised, e.g. NaN into float4)."""
    if dtype == np.float64:
        return v64
    if dtype == np.float32:
        return v64.astype(np.float32)
    fmt = get_format(dtype)
    a = np.ascontiguousarray(v64, np.float64)
    codes = np.empty(a.shape, fmt.code_dtype)
    opts = make_opts(fmt, "nearest_even", False, True, None, None, None)
    bi, bo, cs = a.ctypes.data, codes.ctypes.data, codes.itemsize

    def kernel(start, stop):
        return lib.lp_encode(fmt.struct, opts, lib.LP_F64,
                             ffi.cast("void *", bi + start * 8),
                             stop - start, ffi.NULL, start,
                             ffi.cast("void *", bo + start * cs))
    if a.size:
        err = run_chunked(kernel, a.size)
        if err:
            raise_errors(err, fmt, a)
    return codes.view(dtype)


def pack_bits(c, nb):
    """Dense little-endian layout of nb-bit codes c (uint8, flattened in C
    order; nb < 8): two 4-bit codes per byte, four 6-bit in three bytes,
    the first code in the lowest bits, the last byte zero-padded.
    lowprec.convert.pack uses it."""
    c = np.asarray(c, np.uint8).reshape(-1) & ((1 << nb) - 1)
    if nb == 4:
        if c.size % 2:
            c = np.append(c, np.uint8(0))
        return (c[0::2] | (c[1::2] << 4)).astype(np.uint8)
    bits = np.unpackbits(c[:, None], axis=1, count=nb, bitorder="little")
    return np.packbits(bits.reshape(-1), bitorder="little")


def _check_tensor_amax(tensor_amax):
    if tensor_amax is None:
        return None
    if not (isinstance(tensor_amax, (int, float, np.integer, np.floating))
            or (isinstance(tensor_amax, np.ndarray)
                and tensor_amax.ndim == 0)) or isinstance(tensor_amax, bool):
        raise TypeError(f"tensor_amax must be a real number, got "
                        f"{tensor_amax!r}")
    t = float(tensor_amax)
    if not (math.isfinite(t) and t >= 0):
        raise ValueError(f"tensor_amax must be finite and >= 0, got "
                         f"{tensor_amax!r}")
    return t


def _tensor_amax(a, in_type):
    """max |x| over the whole tensor, in C over threads (NaN if any)."""
    n = a.size
    if n == 0:
        return 0.0
    es, base = a.dtype.itemsize, a.ctypes.data
    out = []

    def kernel(start, stop):
        out.append(lib.lp_amax(in_type, ffi.cast("void *", base + start * es),
                               stop - start))
        return 0
    run_chunked(kernel, n)
    return float("nan") if any(math.isnan(v) for v in out) else max(out)


def quantize_blocks(x: ArrayLike, fmt: Union[BlockFormatLike, FormatLike], *,
                    block: Optional[BlockShape] = None, axis: IntLike = -1,
                    scale_format: Optional[FormatLike] = None,
                    scale_rule: Optional[str] = None,
                    tensor_amax: Optional[float] = None,
                    rounding: Rounding = "nearest_even",
                    seed: Seed = None,
                    random_bits: Optional[ArrayLike] = None) -> BlockTensor:
    """Quantizes x in blocks (API.md section 8); fmt is a BlockFormat, a
    recipe name or an element format (then e8m0 / floor / 32), and the
    keyword arguments override its fields.

    Each block's scale comes from its amax (max |x|, exact) by the scale
    rule; each element is rounded once to the element format and
    saturates to ±max.  A block holding a NaN or an infinity gets the NaN
    scale and zero codes.  docs/blocks.md has every rule.

    Parameters
    ----------
    x
        Values (dtypes as `encode`).
    fmt
        A BlockFormat, a recipe name ("mxfp4", "nvfp4", "fp8_1x128", ...)
        or an element format.
    block
        Block size: an int along ``axis``, or a tuple over the last axes.
    axis
        The blocked axis (int blocks).
    scale_format
        Override of the scale format.
    scale_rule
        Override of the scale rule.
    tensor_amax
        nvfp4: the tensor amax to use instead of max |x| (finite, >= 0).
    rounding
        Rounding of the elements (as `encode`).
    seed
        Stochastic rounding's seed (keyed on x's flat index).
    random_bits
        Stochastic rounding: the caller's random words, as for `encode`
        (R = the dtype's width), one per element of x.

    Returns
    -------
    BlockTensor
        Codes, scales and the tensor scale.

    Raises
    ------
    TypeError
        An argument of the wrong kind, x of another dtype.
    ValueError
        block < 1, an axis out of range, a rule the scale format does not
        have, an e8m0 element format, a bad tensor_amax.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> x = np.float32([[0.5, -1.0, 3.0, 10.0]])
    >>> bt = lp.quantize_blocks(x, "mxfp4", block=4)  # scale 2^(3 - 2)
    >>> bt.scales.astype(np.float32)
    array([[2.]], dtype=float32)
    >>> bt.dequantize()
    array([[ 0., -1.,  3.,  8.]], dtype=float32)
    """
    return _quantize_blocks(x, fmt, block=block, axis=axis,
                            scale_format=scale_format, scale_rule=scale_rule,
                            tensor_amax=tensor_amax, rounding=rounding,
                            seed=seed, random_bits=random_bits)


def _quantize_blocks(x, fmt, *, block=None, axis=-1, scale_format=None,
                     scale_rule=None, tensor_amax=None,
                     rounding="nearest_even", seed=None, random_bits=None,
                     index=None):
    """quantize_blocks, with x a chunk of a larger array when index is its
    index map (lowprec.convert.index_map): stochastic rounding keys on the
    larger array's flat indices (lowprec.dask)."""
    bf = _as_block_format(fmt)
    if block is not None or scale_format is not None \
            or scale_rule is not None:
        sf = bf.scale_format if scale_format is None else \
            get_format(scale_format)
        rule = scale_rule
        if rule is None and scale_format is None:
            rule = bf.scale_rule
        bf = BlockFormat(bf.element, bf.block if block is None else block,
                         sf, rule, two_level=bf.two_level and
                         _scale_kind(sf) == "float",
                         name=None)
    t_amax = _check_tensor_amax(tensor_amax)
    a, in_type = _input(x)
    el, sf = bf.element, bf.scale_format
    nd = a.ndim
    blk = bf.block
    if isinstance(blk, tuple):
        if nd < len(blk):
            raise ValueError(f"block {blk!r} needs at least {len(blk)} "
                             f"axes; x has shape {a.shape}")
        ax = tuple(range(nd - len(blk), nd))
        out_axis = ax if len(blk) > 1 else ax[0]
    else:
        ax = val.check_int(axis, "axis")
        if not -nd <= ax < nd:
            raise ValueError(f"axis {axis} is out of range for x of shape "
                             f"{a.shape}")
        ax = ax % nd
        out_axis = ax
    shape = a.shape
    if isinstance(blk, tuple) and len(blk) == 2:
        P = int(np.prod(shape[:-2], dtype=np.int64))
        R, C = shape[-2], shape[-1]
        br, bc = blk
        sshape = shape[:-2] + (-(-R // br), -(-C // bc))
    else:
        b = blk[0] if isinstance(blk, tuple) else blk
        a_ = ax[0] if isinstance(ax, tuple) else ax
        L = shape[a_]
        sshape = shape[:a_] + (-(-L // b),) + shape[a_ + 1:]
        if a_ == nd - 1:
            P, R, C, br, bc = int(np.prod(shape[:-1], dtype=np.int64)), 1, \
                L, 1, b
            if L % b == 0 and L:
                P, C = P * (L // b), b          # rows of one block: threads
        else:
            P = int(np.prod(shape[:a_], dtype=np.int64))
            R, C = L, int(np.prod(shape[a_ + 1:], dtype=np.int64))
            br, bc = b, 1
    opts = make_opts(el, rounding, True, True, seed, None, None)
    if opts.rounding != lib.LP_SR:
        index = None
    run, starts = (0, ffi.NULL) if index is None else \
        (index[0], ffi.cast("int64_t *", index[1].ctypes.data))
    if index is not None and random_bits is not None:
        raise ValueError("random_bits cannot be combined with an index map "
                         "(chunks of a larger array)")
    words = attach_random_bits(opts, random_bits, a.shape, None)
    rule = bf.scale_rule
    kind = _scale_kind(sf)
    two = bf.two_level and kind == "float"
    if two:
        T = t_amax if t_amax is not None else _tensor_amax(a, in_type)
    spec = ffi.new("lp_block_spec *")
    spec.rule = _RULE_CODE[rule]
    spec.int_shift = _int_shift(el)
    spec.tensor_amax = T if two else -1.0
    spec.P, spec.R, spec.C, spec.br, spec.bc = P, R, C, br, bc
    codes = np.empty(shape, np.int8 if isinstance(el, IntFormat)
                     else np.uint8)
    scales = np.empty(sshape, np.float32 if kind == "float32" else np.uint8)
    ts = ffi.new("float *", 1.0)
    if two:
        smax = float(sf.max)
        emax = float(el.max) if not isinstance(el, IntFormat) else \
            el.max / 2.0 ** _int_shift(el)
        lib.lp_nvfp4_tensor(smax, emax, T, ts)
    if a.size and R and C:
        nrb = -(-R // br)
        units = P * nrb
        per = max(1, R * C // nrb)          # elements of a row of blocks
        total = units * per
        sfp = ffi.NULL if kind == "float32" else sf.struct
        bi, bcod, bsc = a.ctypes.data, codes.ctypes.data, scales.ctypes.data

        def kernel(start, stop):
            u0 = start // per
            u1 = units if stop == total else stop // per
            if u1 <= u0:
                return 0
            return lib.lp_quantize_blocks_map(
                el.struct, sfp, spec, opts, in_type,
                ffi.cast("void *", bi), u0, u1, run, starts,
                ffi.cast("void *", bcod), ffi.cast("void *", bsc))
        err = run_chunked(kernel, total)
        del words                       # (kept alive for the kernels)
        if err < 0:
            raise MemoryError("lp_quantize_blocks: out of memory")
        if err:
            raise_errors(err, el, a)
    codes = codes.view(_ml_dtype(el)) if not isinstance(el, IntFormat) \
        else codes
    scales = scales if kind == "float32" else scales.view(_ml_dtype(sf))
    return BlockTensor(codes, scales, ts[0] if two else 1.0, bf, out_axis)


def block_scales(x: ArrayLike, fmt: Union[BlockFormatLike, FormatLike],
                 **kwargs: Any) -> NDArray[Any]:
    """The scales of quantize_blocks(x, fmt, **kwargs) alone.

    Parameters
    ----------
    x
        As `quantize_blocks`.
    fmt
        As `quantize_blocks`.
    **kwargs
        As `quantize_blocks`.

    Returns
    -------
    ndarray
        ml_dtypes e8m0 / e4m3 / ue5m3 scales, or float32.

    Raises
    ------
    TypeError
        As `quantize_blocks`.
    ValueError
        As `quantize_blocks`.

    Examples
    --------
    >>> import numpy as np, lowprec as lp
    >>> x = np.float32([[0.5, -1.0, 3.0, 10.0]])
    >>> lp.block_scales(x, "mxfp4", block=2).astype(np.float32)
    array([[0.25, 2.  ]], dtype=float32)
    """
    return quantize_blocks(x, fmt, **kwargs).scales


def quantize(x, fmt, *, rounding="nearest_even", seed=None, index=None,
             **kwargs):
    """Fake quantization in blocks: dequantize(quantize_blocks(x)) in x's
    float dtype (float64 for integer inputs); index as _quantize_blocks."""
    key = as_array(x).dtype.newbyteorder("=")
    dt = key if key.kind == "f" or key in ML_FLOAT_DTYPES \
        else np.dtype(np.float64)
    bt = _quantize_blocks(x, fmt, rounding=rounding, seed=seed, index=index,
                          **kwargs)
    return bt.dequantize(dt)


def is_block_format(fmt) -> bool:
    return isinstance(fmt, BlockFormat) or (
        isinstance(fmt, str) and _recipe_of(fmt) is not None)


# -- scaled_matmul on BlockTensor operands (lowprec.matmul calls this) --------

def _matmul_scale(bt):
    """Block scales as scaled_matmul takes them: e8m0 arrays as they are,
    other 8-bit float scales as their float32 values (exact)."""
    s = bt.scales
    if s.dtype == np.float32 or s.dtype == np.dtype(ml_dtypes.float8_e8m0fnu):
        return s
    s = s.astype(np.float32)
    # an nvfp4 block whose scale code is 0 holds zero codes: section 3
    # takes scales > 0, and with zero codes p_b is a zero whatever the
    # scale, so 1 gives the bits of the literal product by 0
    s[s == 0] = 1
    return s


def _fixed_point_format(el):
    """A float format whose values are exactly q / 2^(bits - 2) for the
    signed integer element el's codes q, written sign-magnitude: two
    exponent bits and bits - 2 mantissa bits, bias 1 (field 0: m / 2^(bits
    - 2); field 1: 1 + m / 2^(bits-2); field 2, m = 0: 2, for q = -2^(bits
    - 1)), no inf, no NaN.  scaled_matmul multiplies mxint8 elements as
    these values, so p_b sums the exact products q_a q_b / 2^12 as section
    8 reads them; the magnitude code is |q| itself."""
    return FloatFormat(2, el.bits - 2, bias=1, infs=False, nans="none")


def _matmul_codes(t, name):
    """(codes, format) of BlockTensor t as scaled_matmul takes them: float
    elements as they are, with the element format;
    signed integer elements (mxint8, read as q / 64) as sign-magnitude
    codes of _fixed_point_format: the same values exactly."""
    el = t.format.element
    if not isinstance(el, IntFormat):
        return t.codes, el
    if not el.signed:
        raise ValueError(f"scaled_matmul on BlockTensors takes float or "
                         f"signed integer elements; {name} has {el.name}")
    fp = _fixed_point_format(el)
    q = np.asarray(t.codes).astype(np.int32)
    sm = np.where(q < 0, (1 << el.bits) | -q, q).astype(fp.code_dtype)
    return sm, fp


def matmul_blocks(ba, axa, bb, axb, K):
    """(bm, bk, bn) of a BlockTensor product: a's block ba along axis axa
    (its last axis, K, or 2-D blocks), b's bb along axb (axis 0 or 2-D);
    bn None unless b has 2-D blocks.  Raises ValueError for another
    layout, blocks along K that differ or do not divide K."""
    if isinstance(ba, tuple) and len(ba) == 2:
        bm, bka = ba
    elif axa in (1, (1,)):
        bm, bka = 1, ba[0] if isinstance(ba, tuple) else ba
    else:
        raise ValueError(f"a must be blocked along its last axis (K) or in "
                         f"2-D blocks; it is blocked along axis {axa}")
    bn = None
    if isinstance(bb, tuple) and len(bb) == 2:
        bkb, bn = bb
    elif axb == 0:
        bkb = bb
    else:
        raise ValueError(f"b must be blocked along axis 0 (K) or in 2-D "
                         f"blocks; it is blocked along axis {axb}")
    if bka != bkb:
        raise ValueError(f"the blocks along K differ: a has {bka} "
                         f"(block {ba!r}), b has {bkb} (block {bb!r})")
    if K % bka:
        raise ValueError(f"the block along K ({bka}) must divide K = {K} "
                         f"for scaled_matmul")
    return bm, bka, bn


def block_matmul_args(a, b):
    """((a_codes, a_format), (b_codes, b_format), a_scale, b_scale, block,
    tensor_scale, nan_rows, nan_cols) of scaled_matmul(bt_a, bt_b): a
    (M, K) blocked along K (its last axis) or in 2-D blocks (bm, bk); b
    (K, N) blocked along K (axis 0) or in 2-D blocks (bk, bn); the blocks
    along K must agree and divide K.  tensor_scale: R32(ta * tb), or None
    when neither has a second level.  NaN scales (blocks that held NaN or
    inf) are replaced by 1; nan_rows (M,) / nan_cols (N,) say which rows of
    a / columns of b had one, so the caller makes those outputs NaN."""
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, BlockTensor):
            raise TypeError(f"scaled_matmul with a BlockTensor takes two: "
                            f"{name} is {type(t).__name__}")
        if t.codes.ndim != 2:
            raise ValueError(f"scaled_matmul on BlockTensors takes 2-D "
                             f"operands; {name} has shape {t.shape}")
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not agree "
                         f"along K")
    bm, bka, bn = matmul_blocks(a.format.block, a.axis, b.format.block,
                                b.axis, K)
    sa, sb = _matmul_scale(a), _matmul_scale(b)
    if (sa.dtype == np.float32) != (sb.dtype == np.float32):
        sa, sb = sa.astype(np.float32), sb.astype(np.float32)
    if bm > 1:
        sa = np.repeat(sa, bm, axis=0)[:M]
    sa, nan_a = _finite_scales(sa)
    sb, nan_b = _finite_scales(sb)
    nan_rows = nan_a.any(axis=1)
    nan_cols = nan_b.any(axis=0)
    if bn is not None:
        nan_cols = np.repeat(nan_cols, bn)[:N]
    block = (bka,) if bn is None else (bka, bn)
    ts = None
    if a.format.two_level or b.format.two_level:
        ts = np.float32(a.tensor_scale) * np.float32(b.tensor_scale)
    return (_matmul_codes(a, "a"), _matmul_codes(b, "b"), sa, sb, block,
            ts, nan_rows, nan_cols)


def _finite_scales(s):
    """(s with its NaN scales replaced by 1, the NaN mask)."""
    nan = np.isnan(s.astype(np.float32))
    if nan.any():
        s = np.where(nan, np.array(1.0, np.float32).astype(s.dtype), s)
    return s, nan
