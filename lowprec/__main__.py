"""Command line: ``python -m lowprec`` (or ``lowprec``).

    lowprec demo                 quantize a built-in sample tensor into every
                                 format and mode; print error statistics
    lowprec formats              the format table (Markdown), from the registry
    lowprec describe FMT CODE..  decompose codes (hex or decimal)
    lowprec vectors FMT [...]    test vectors: inputs where rounding breaks and
                                 the expected codes, as CSV
    lowprec vectors OP FMT [...] operation test vectors (OP: add, sub, mul,
                                 div, fma, sqrt) in TestFloat's text format:
                                 operands, result [, flags] in hex per line
"""
from __future__ import annotations

import argparse
import math
import secrets
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from . import decode, encode, formats, get_format, quantize
from ._options import ROUNDING, ROUNDING_NAMES
from .formats import FloatFormat, IntFormat


# -- the format table ------------------------------------------------------

def _num(v: float) -> str:
    if v == 0:
        return "0"
    e = math.log2(abs(v))
    if e == int(e) and abs(e) >= 8:
        return f"2^{int(e)}"
    return f"{v:.6g}"


def format_table(table: Optional[Dict[str, Any]] = None,
                 aliases: Optional[Dict[str, List[str]]] = None) -> str:
    """Markdown table of every built-in format (or of the formats of the
    dict table, with the aliases lists of the dict aliases), computed from
    the format objects (docs/formats.md is this text; a test keeps them
    equal)."""
    if table is None:
        from .formats import _ALIASES
        aliases = {}
        for alias, name in _ALIASES.items():
            if alias != name:
                aliases.setdefault(name, []).append(alias)
    aliases = aliases or {}
    lines = ["| name | aliases | bits | ebits | mbits | bias | inf | NaN | "
             "-0 | max | min normal | min subnormal | eps |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, f in (formats() if table is None else table).items():
        al = ", ".join(aliases.get(name, []))
        if isinstance(f, IntFormat):
            lines.append(f"| {name} | {al} | {f.bits} | | | | no | none | "
                         f"no | {f.max} | min {f.min} | | 1 |")
            continue
        w = (f.nbits + 3) // 4
        inf = f"0x{f.inf_code:0{w}x}" if f.inf_code is not None else "no"
        if f.nan_code is None:
            nan = "none"
        elif f.nans == "ieee":
            nan = f"IEEE (canonical 0x{f.nan_code:0{w}x})"
        else:
            nan = f"0x{f.nan_code:0{w}x} ({f.nans})"
        negzero = "yes" if f.negzero else ("unsigned" if not f.signed
                                           else "no")
        lines.append(
            f"| {name} | {al} | {f.nbits} | {f.ebits} | {f.mbits} | {f.bias} "
            f"| {inf} | {nan} | {negzero} | {_num(f.max)} | "
            f"{_num(f.min_normal)} | {_num(f.min_subnormal)} | "
            f"{_num(f.eps)} |")
    return "\n".join(lines) + "\n"


def formats_doc() -> str:
    return ("# Formats\n\n"
            "Generated from the registry by `python -m lowprec formats`; "
            "`tests/test_docs.py` fails when this copy is stale.\n\n"
            "Value semantics are those of ml_dtypes for every type it has. "
            "`inf` and `NaN` give codes of the positive sign; `-0` says "
            "whether negative zero has its own code.\n\n"
            + format_table() + _p3109_doc())


def _p3109_doc() -> str:
    """The IEEE P3109 section of docs/formats.md: the 8-bit formats."""
    from .formats import p3109
    table: Dict[str, Any] = {}
    aliases: Dict[str, List[str]] = {}
    for signed in (True, False):
        for domain in ("extended", "finite"):
            for p in range(1, 8 if signed else 9):
                f = p3109(8, p, signed=signed, domain=domain)
                name = str(f.name)
                table[name] = f
                aliases[name] = ["p3109_k8p" + name[len("binary8p"):]]
    return ("\n## IEEE P3109\n\n"
            "`lp.p3109(k, p, signed=True, domain=\"extended\")` gives the "
            "P3109 format of k bits (2..16) and precision p (p - 1 stored "
            "mantissa bits), named `binary{k}p{p}{s|u}{e|f}`; `get_format` "
            "takes these names and gfloat's `p3109_k{k}p{p}{se|sf|ue|uf}` "
            "for every k and p (with at most 8 exponent bits), so the "
            "family is not listed in `lp.formats()`.  Every member has "
            "subnormals, one zero (no -0) and one NaN: 0x80 signed (the "
            "code -0 would have), the all-ones code unsigned.  The "
            "extended domain has infinities, the codes just below the NaN "
            "(signed 0x7f / 0xff, unsigned 0xfe); the finite domain has "
            "none, so overflow without saturation gives NaN.  The bias is "
            "2^(k-p-1) signed and 2^(k-p) unsigned.  binary8p4sf and "
            "binary8p3sf are float8_e4m3fnuz and float8_e5m2fnuz.  "
            "Negative inputs into the unsigned formats raise ValueError, "
            "as for every unsigned format.  With p = 1 (no mantissa bits) "
            "a nearest-even tie goes to the larger magnitude, as for E8M0 "
            "(the significand 1 is odd); gfloat picks the even code "
            "instead.\n\nThe 8-bit members:\n\n"
            + format_table(table, aliases))


# -- the demo ----------------------------------------------------------------

def sample_tensor(n: int = 1 << 16, seed: int = 2024) -> np.ndarray:
    """The built-in sample: a deterministic float32 tensor shaped like what
    quantizers see: Gaussian weights, heavy-tailed activations with a few
    outliers, and small gradients spanning many binades."""
    rng = np.random.default_rng(seed)
    k = n // 4
    weights = rng.normal(0.0, 0.02, k)
    acts = rng.standard_t(3, k) * 0.5
    acts[rng.integers(0, k, 8)] *= 40.0                  # outliers
    grads = rng.normal(0, 1, n - 2 * k) * 10.0 ** rng.uniform(-8, -2,
                                                             n - 2 * k)
    return np.concatenate([weights, acts, grads]).astype(np.float32)


def _stats(x, q, fmt, scale):
    x64 = x.astype(np.float64)
    q64 = q.astype(np.float64)
    err = q64 - x64
    finite = np.isfinite(q64)
    nz = x64 != 0
    sig = np.sum(x64 ** 2)
    noise = np.sum(err[finite] ** 2)
    sqnr = 10 * math.log10(sig / noise) if noise > 0 else math.inf
    rel = np.abs(err[finite & nz]) / np.abs(x64[finite & nz])
    over = int(np.sum(np.abs(x64) > fmt.max * scale))
    under = int(np.sum(nz & (q64 == 0)))
    return (float(np.max(np.abs(err[finite]))), float(rel.max(initial=0)),
            sqnr, over, under, int(np.sum(~finite)))


def demo(out=sys.stdout) -> None:
    x = sample_tensor()
    amax = float(np.max(np.abs(x)))
    print(f"lowprec demo: {x.size} float32 values (weights, heavy-tailed "
          f"activations with outliers, gradients over 6 decades), "
          f"amax {amax:.4g}", file=out)
    print("Formats of 8 bits or fewer and integers get a per-tensor scale "
          "amax / max (the largest value maps to the format's max; unsigned "
          "integers also a zero point at mid-range); 16- and 32-bit formats "
          "take the values as they are.  SQNR in dB per rounding mode; the "
          "other columns are for nearest-even.\n", file=out)
    short = {"nearest_even": "rne", "nearest_away": "rna",
             "toward_zero": "rz", "toward_positive": "ru",
             "toward_negative": "rd", "to_odd": "ro", "stochastic": "sr"}
    head = (f"{'format':20} " + " ".join(f"{short[m]:>6}" for m in
                                         ROUNDING_NAMES)
            + f" {'max abs err':>11} {'max rel err':>11} {'over':>5} "
              f"{'under':>6} {'nan':>4}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for name, f in formats().items():
        if isinstance(f, FloatFormat) and not f.signed:
            continue   # e8m0 is a scale format: shown below
        zp = None
        if f.nbits > 8:
            scale = 1.0
        elif isinstance(f, IntFormat) and not f.signed:
            zp = (f.max + 1) // 2
            scale = amax / (f.max - zp)
        else:
            scale = amax / f.max
        cells = []
        rne: Any = None
        for mode in ROUNDING_NAMES:
            q = quantize(x, f, rounding=mode, scale=scale, saturate=True,
                         zero_point=zp, seed=0)
            st = _stats(x, q, f, scale)
            cells.append(st[2])
            if mode == "nearest_even":
                rne = st
        print(f"{name:20} " + " ".join(f"{c:6.1f}" for c in cells)
              + f" {rne[0]:11.3g} {rne[1]:11.3g} {rne[3]:5d} {rne[4]:6d}"
                f" {rne[5]:4d}", file=out)
    # Block recipes (API.md section 8) through lp.quantize_blocks: each
    # block's scale from its own amax, next to the per-tensor rows above
    from .blocks import quantize_blocks, recipes
    print("\nBlock-scaled recipes (lp.quantize_blocks: a scale per block "
          "from the block's amax; compare with the per-tensor SQNR above):",
          file=out)
    print(f"  {'recipe':12} {'element':15} {'block':>10} {'scale':15} "
          f"{'rule':7} {'SQNR dB':>8} {'max rel err':>11} {'to zero':>8}",
          file=out)
    x2 = x.reshape(-1, 256)
    for name, bf in recipes().items():
        bt = quantize_blocks(x2, name)
        q = bt.dequantize(np.float32).reshape(-1)
        st = _stats(x, q, bf.element, math.inf)
        print(f"  {name:12} {bf.element.name:15} {str(bf.block):>10} "
              f"{bf.scale_format.name:15} {bf.scale_rule:7} {st[2]:8.1f} "
              f"{st[1]:11.3g} {st[4]:8d}", file=out)


# -- test vectors ------------------------------------------------------------

def test_vectors(fmt, dtype=np.float32, rounding="nearest_even",
                 saturate=False, subnormals=True, seed=None):
    """Inputs where rounding into fmt breaks: every finite value, every
    midpoint between neighbours (and past max), each with its +-1 ulp
    neighbours in dtype, both signs, zeros, infinities and NaN (when the
    format has NaN); with their codes.  seed: stochastic rounding's
    generator key (the same seed, the same codes).  Returns (inputs,
    codes)."""
    f = get_format(fmt)
    dtype = np.dtype(dtype)
    v = f.values().astype(np.float64)
    v = v[v >= 0]
    if isinstance(f, FloatFormat):
        nxt = f.max + 2.0 ** (f.emax - f.mbits)
    else:
        nxt = f.max + 1.0
    grid = np.append(v, nxt)
    mids = (grid[:-1] + grid[1:]) / 2
    pts = np.concatenate([v, mids, [nxt]])
    with np.errstate(over="ignore"):
        p = pts.astype(dtype)
        cands = [p, np.nextafter(p, np.array(np.inf, dtype)),
                 np.nextafter(p, np.array(-np.inf, dtype))]
    xs = np.unique(np.concatenate(cands))
    xs = xs[np.isfinite(xs) & (xs >= 0)]
    xs = np.concatenate([xs, -xs] if f.signed or isinstance(f, IntFormat)
                        else [xs])
    specials = [np.inf] + ([-np.inf] if f.signed else [])
    if isinstance(f, FloatFormat) and f.nan_code is not None:
        specials.append(np.nan)
    if isinstance(f, FloatFormat) and not f.has_zero:
        xs = xs[xs != 0]
    xs = np.concatenate([xs, np.array(specials, dtype)])
    codes = encode(xs, f, rounding=rounding, saturate=saturate,
                   subnormals=subnormals, seed=seed)
    return xs, codes


def _hex_of(x):
    a = np.asarray(x)
    bits = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])
    return f"0x{int(bits):0{2 * a.itemsize}x}"


OP_NAMES = ("add", "sub", "mul", "div", "fma", "sqrt")


def _special_codes(f):
    """Codes where the rules of an operation change: zeros, the smallest
    and largest subnormal and normal, 1, max, infinities, the NaNs (and an
    IEEE signalling one), with both signs."""
    one = int(encode(1.0, f))
    mags = {0, 1, 2, (1 << f.mbits) - 1, 1 << f.mbits, (1 << f.mbits) + 1,
            one, one + 1, f.max_code - 1, f.max_code}
    if f.inf_code is not None:
        mags.add(f.inf_code)
        if f.nans == "ieee" and f.mbits >= 2:
            mags.add(f.inf_code | 1)
    if f.nan_code is not None:
        mags.add(f.nan_code & ~f.sign_bit)
    mags = {m for m in mags if 0 <= m < (1 << (f.nbits - int(f.signed)))}
    codes = set(mags) | ({m | f.sign_bit for m in mags} if f.signed else set())
    if f.nan_code is not None:
        codes.add(f.nan_code)
    return np.array(sorted(codes), dtype=np.int64)


def op_vectors(op, f, rounding="nearest_even", seed=0, count=10000,
               saturate=False, subnormals=True, tininess="after"):
    """Operands, results and flags of op in format f: every operand tuple
    of formats of at most 8 bits (fma: at most 6 bits; sqrt: 16), else
    every tuple of special codes plus count seeded random ones.  NaN
    results in a format without NaN give code 0 with the invalid flag."""
    from . import arith
    arity = {"fma": 3, "sqrt": 1}.get(op, 2)
    full = {1: 16, 2: 8, 3: 6}[arity]
    if f.nbits <= full:
        axes = [np.arange(1 << f.nbits, dtype=np.int64)] * arity
        cols = [g.ravel() for g in np.meshgrid(*axes, indexing="ij")]
    else:
        sp = _special_codes(f)
        cols = [g.ravel() for g in np.meshgrid(*[sp] * arity,
                                               indexing="ij")]
        rng = np.random.default_rng(seed)
        cols = [np.concatenate([c, rng.integers(0, 1 << f.nbits, count,
                                                dtype=np.int64)])
                for c in cols]
    cols = [c.astype(f.code_dtype) for c in cols]
    fn = getattr(arith, op)
    codes, fl = fn(*cols, f, rounding=rounding, saturate=saturate,
                   subnormals=subnormals, flags=True, tininess=tininess,
                   seed=seed)
    return cols, codes, fl


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="lowprec", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("demo", help="error statistics of every format and mode")
    sub.add_parser("formats", help="print docs/formats.md")
    d = sub.add_parser("describe", help="decompose codes")
    d.add_argument("format")
    d.add_argument("codes", nargs="+")
    v = sub.add_parser("vectors", help="test vectors: rounding (CSV) or "
                                       "operations (TestFloat format)")
    v.add_argument("target", nargs="+", metavar="[OP] FORMAT",
                   help="a format (rounding vectors, CSV), or an operation "
                        f"({', '.join(OP_NAMES)}) and a format")
    v.add_argument("--seed", type=int, default=None,
                   help="seed of stochastic rounding (and of the random "
                        "operands of operation vectors, default 0); "
                        "rounding vectors without it draw a fresh seed, "
                        "printed in the header so the run can be replayed")
    v.add_argument("--flags", action="store_true",
                   help="operation vectors: write the flags column")
    v.add_argument("--count", type=int, default=10000,
                   help="operation vectors of formats too wide for every "
                        "operand tuple: random tuples besides the specials")
    v.add_argument("--tininess", default="after", choices=["after",
                                                           "before"])
    v.add_argument("--dtype", default="float32",
                   choices=["float16", "float32", "float64"])
    v.add_argument("--rounding", default="nearest_even")
    v.add_argument("--saturate", action="store_true")
    v.add_argument("--flush", action="store_true",
                   help="flush subnormal results to zero")
    args = ap.parse_args(argv)
    if args.cmd in (None, "demo"):
        demo()
    elif args.cmd == "formats":
        sys.stdout.write(formats_doc())
    elif args.cmd == "describe":
        f = get_format(args.format)
        for c in args.codes:
            print(f.describe(int(c, 0)))
    elif args.cmd == "vectors" and args.target[0] in OP_NAMES:
        if len(args.target) != 2:
            ap.error("vectors OP FORMAT takes one format")
        op, f = args.target[0], get_format(args.target[1])
        seed = 0 if args.seed is None else args.seed
        cols, codes, fl = op_vectors(op, f, args.rounding, seed,
                                     args.count, args.saturate,
                                     not args.flush, args.tininess)
        w = (f.nbits + 3) // 4
        out = sys.stdout
        for row in zip(*[c.tolist() for c in cols], codes.tolist(),
                       fl.tolist()):
            words = [f"{c:0{w}X}" for c in row[:-1]]
            if args.flags:
                words.append(f"{row[-1]:02X}")
            out.write(" ".join(words) + "\n")
    elif args.cmd == "vectors":
        if len(args.target) != 1:
            ap.error(f"vectors: {args.target[0]!r} is not an operation "
                     f"({', '.join(OP_NAMES)})")
        f = get_format(args.target[0])
        seed = args.seed
        stochastic = ROUNDING.get(args.rounding) == ROUNDING["stochastic"]
        if seed is None and stochastic:
            seed = secrets.randbits(64)        # printed: the run replays
        try:
            xs, codes = test_vectors(f, args.dtype, args.rounding,
                                     args.saturate, not args.flush, seed)
        except (TypeError, ValueError) as exc:
            ap.error(str(exc))
        w = codes.dtype.itemsize * 2           # hex digits
        print(f"# {f.name or repr(f)}, {args.dtype} inputs, rounding="
              f"{args.rounding}, saturate={args.saturate}, "
              f"subnormals={not args.flush}"
              + (f", seed={seed}" if stochastic else ""))
        print("input_bits,input,code")
        for x, c in zip(xs, codes):
            code = int(c) & ((1 << (4 * w)) - 1)
            print(f"{_hex_of(x)},{float(x)!r},0x{code:0{w}x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
