"""A vectorised exact reference for exhaustive tests.

Rounds float64 arrays to a float format by locating each input between
two neighbouring values of the format (searchsorted on the value table of
lowprec.reference, itself checked against the specs) and deciding with
exact comparisons only: the midpoint of two neighbours, (2m+1) * 2^(q-1),
is exact in binary64.  No arithmetic on the input is rounded, and nothing
here shares code with the C or Numba kernels.  Applies the rules of
lowprec.reference.ref_encode (numbered the same).
"""
import numpy as np

from lowprec.reference import ref_decode, ref_limits

_TABLES = {}


def _table(fmt):
    """Non-negative finite values of fmt, their magnitude codes, and the
    grid point above max (with its would-be code max_code + 1)."""
    key = (fmt.kind, fmt.ebits, fmt.mbits, fmt.bias, fmt.infs, fmt.nans,
           fmt.negzero, fmt.subnormals, fmt.signed)
    if key in _TABLES:
        return _TABLES[key]
    lim = ref_limits(fmt)
    vals, codes = [], []
    for mag in range(1 << (fmt.ebits + fmt.mbits)):
        v = ref_decode(fmt, mag)
        if isinstance(v, float) and (v != v or v in (float("inf"),
                                                     float("-inf"))):
            continue
        vals.append(float(v))
        codes.append(mag)
    order = np.argsort(vals, kind="stable")
    V = np.array(vals)[order]
    C = np.array(codes, np.int64)[order]
    nxt = float(lim["max"]) + 2.0 ** (lim["emax"] - fmt.mbits)
    V = np.append(V, nxt)
    C = np.append(C, lim["max_code"] + 1)
    _TABLES[key] = (V, C, lim)
    return _TABLES[key]


def grid_encode(fmt, x, rounding, saturate=False, subnormals=True):
    """Codes (int64) of float64 array x; -1 where the reference raises
    ValueError (NaN without NaN code, negative into unsigned, zero into a
    format with neither zero nor NaN)."""
    V, C, lim = _table(fmt)
    x = np.asarray(x, np.float64).reshape(-1)
    neg = np.signbit(x)
    a = np.abs(x)
    max_code, nan_code, inf_code = lim["max_code"], lim["nan_code"], \
        lim["inf_code"]
    sign_bit = (1 << (fmt.ebits + fmt.mbits)) if fmt.signed else 0
    maxv = float(lim["max"])
    min_normal = float(lim["min_normal"])
    has_zero = lim["has_zero"]

    finite = np.isfinite(a) & (a > 0)
    af = np.where(finite, a, V[0] if V[0] > 0 else 1.0)
    i = np.searchsorted(V, af, side="right") - 1
    below = i < 0                        # only without zero (rule 5)
    beyond = i >= len(V) - 1             # at or above the point past max
    ic = np.clip(i, 0, len(V) - 2)
    lo, hi = V[ic], V[ic + 1]
    exact = af == lo
    mid = (lo + hi) / 2                  # exact: (2m+1) * 2^(q-1)
    above_mid, tie = af > mid, af == mid
    lo_odd_sig = (C[ic] & 1) == 1 if fmt.mbits else lo != 0
    lo_odd_code = (C[ic] & 1) == 1
    # 3. modes
    if rounding == "nearest_even":
        up = above_mid | (tie & lo_odd_sig)
    elif rounding == "nearest_away":
        up = above_mid | tie
    elif rounding == "toward_zero":
        up = np.zeros_like(exact)
    elif rounding == "toward_positive":
        up = ~exact & ~neg
    elif rounding == "toward_negative":
        up = ~exact & neg
    elif rounding == "to_odd":
        up = ~exact & ~lo_odd_code
    else:
        raise ValueError(rounding)
    mag = np.where(up, C[ic + 1], C[ic])
    val = np.where(up, hi, lo)
    # 4. overflow
    over = beyond | (val > maxv)
    to_inf = {"nearest_even": np.ones_like(neg), "nearest_away":
              np.ones_like(neg), "toward_zero": np.zeros_like(neg),
              "to_odd": np.zeros_like(neg), "toward_positive": ~neg,
              "toward_negative": neg}[rounding]
    if saturate:
        to_inf = np.zeros_like(neg)
    if inf_code is not None:
        inf_res, inf_is_nan = inf_code, False
    elif nan_code is not None:
        inf_res, inf_is_nan = nan_code, True
    else:
        inf_res, inf_is_nan = max_code, False
    # 5. below the smallest value without zero; 6. flush
    mag = np.where(below, 0, mag)
    val = np.where(below, V[0], val)
    if not subnormals and has_zero:
        flush = (val > 0) & (val < min_normal)
        mag = np.where(flush, 0, mag)
        val = np.where(flush, 0.0, val)
    nan_out = np.zeros(x.shape, bool)
    mag = np.where(over & to_inf, inf_res, np.where(over, max_code, mag))
    if inf_is_nan:
        nan_out |= over & to_inf
    # 7. sign
    zero_res = (mag == 0) & has_zero & ~over
    if fmt.signed:
        signed_code = np.where(neg & ~(zero_res & ~bool(fmt.negzero)),
                               mag | sign_bit, mag)
        error = np.zeros(x.shape, bool)
    else:
        signed_code = mag
        error = neg & ~zero_res
    code = signed_code
    # 1, 2: specials
    nan_in = np.isnan(x)
    inf_in = np.isinf(x)
    zero_in = x == 0
    if saturate:
        inf_code_in = np.where(neg, max_code | sign_bit, max_code)
    elif inf_code is not None:
        inf_code_in = np.where(neg, inf_code | sign_bit, inf_code)
    elif nan_code is not None:
        inf_code_in = np.full(x.shape, nan_code)
    else:
        inf_code_in = np.where(neg, max_code | sign_bit, max_code)
    code = np.where(inf_in, inf_code_in, code)
    if not fmt.signed:
        error = np.where(inf_in, neg, error)
    if has_zero:
        zc = np.where(neg & bool(fmt.negzero), sign_bit, 0)
        code = np.where(zero_in, zc, code)
        error = np.where(zero_in, False, error)
    else:
        code = np.where(zero_in, -1 if nan_code is None else nan_code, code)
        error = np.where(zero_in, nan_code is None, error)
    code = np.where(nan_in, -1 if nan_code is None else nan_code, code)
    error = np.where(nan_in, nan_code is None, error)
    code = np.where(nan_out & ~nan_in & ~inf_in & ~zero_in, nan_code, code)
    return np.where(error, -1, code).astype(np.int64)
