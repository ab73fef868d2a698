"""Block quantization against lp.encode and the NumPy composition, one run.

    LOWPREC_NUM_THREADS=1 python bench/compare_blocks.py [--n 8388608]

For each recipe: the time of quantize_blocks on n float32 values, the time
of lp.encode to the same element format (no scales: the floor a blocked
kernel is held to; target <= 1.5x for mxfp8_e4m3 / mxfp4, <= 2x for
nvfp4), and the straightforward NumPy composition users write (amax per
block, the scale, encode with a per-element scale array; target >= 3x
slower than quantize_blocks).  Best of --repeat; ratios from one run are
what to compare.
"""
import argparse
import os

import numpy as np

import lowprec as lp
from compare import best   # bench/ is the script's directory


def numpy_mx(x, element, emax, block=32):
    """The composition by hand: floor rule, e8m0 scales, encode."""
    xb = x.reshape(-1, block)
    amax = np.abs(xb).max(axis=1)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(amax)) - emax
    e = np.clip(np.nan_to_num(e, neginf=-127), -127, 127)
    s = np.repeat(np.exp2(e).astype(np.float32), block)
    return lp.encode(x, element, scale=s, saturate=True)


def numpy_nvfp4(x, block=16):
    T = np.float32(np.abs(x).max())
    S = np.float32(2688) / T
    xb = x.reshape(-1, block)
    amax = np.abs(xb).max(axis=1)
    s = lp.encode(amax * (S * np.float32(1 / 6)), "e4m3", saturate=True)
    sv = lp.decode(s, "e4m3") * (np.float32(1) / S)
    f = np.repeat(np.float32(1) / sv, block)
    return lp.encode(x * f, "e2m1", saturate=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1 << 23)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n)
         * np.exp2(rng.integers(-8, 8, args.n // 32).repeat(32))
         ).astype(np.float32)
    print(f"n = {args.n} float32, LOWPREC_NUM_THREADS="
          f"{os.environ.get('LOWPREC_NUM_THREADS', '(all)')}")
    rows = [("mxfp8_e4m3", "float8_e4m3fn", lambda: numpy_mx(x, "e4m3", 8)),
            ("mxfp4", "float4_e2m1fn", lambda: numpy_mx(x, "e2m1", 2)),
            ("nvfp4", "float4_e2m1fn", lambda: numpy_nvfp4(x))]
    print(f"{'recipe':12} {'blocks ms':>10} {'encode ms':>10} "
          f"{'numpy ms':>10} {'blocks/encode':>14} {'numpy/blocks':>13}")
    for name, el, comp in rows:
        tb = best(lambda: lp.quantize_blocks(x, name), args.repeat)
        te = best(lambda: lp.encode(x, el, saturate=True), args.repeat)
        tn = best(comp, args.repeat)
        print(f"{name:12} {tb * 1e3:10.2f} {te * 1e3:10.2f} {tn * 1e3:10.2f}"
              f" {tb / te:14.2f} {tn / tb:13.2f}")


if __name__ == "__main__":
    main()
