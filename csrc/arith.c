/* arith.c -- operations on codes: add, sub, mul, div, fma, sqrt, convert.
 *
 * Each result is the exact result of the operation on the operands' values,
 * rounded once by the core of round.h (lp_round_any_flags):
 *   1. unpack   every operand code to (class, sign, sig * 2^exp), sig odd
 *   2. specials NaN, infinity and the invalid cases (IEEE 754 7.2)
 *   3. exact    the finite result as sign * w * 2^e with w a 128-bit
 *               integer; where the exact result needs more bits (div,
 *               sqrt, additions of far-apart values) w carries enough
 *               bits for the core and for the stochastic fraction, and
 *               its bit 0 is a sticky bit ("jam")
 *   4. round    w narrowed to 64 bits (jammed again) and rounded once
 * The jam is exact: every result format has at most 24 significant bits
 * and the core sees 64, so no rounding boundary lies between the exact
 * value and the jammed one.  Stochastic rounding needs the dropped
 * fraction to 64 bits, which the narrowed sig does not hold: it is taken
 * from w, compared with the generator's bits as the core does, and the
 * rounding it picks is done by the core in the direction it picked
 * (toward zero or away from it).
 */
#include <string.h>
#include "round.h"

typedef unsigned __int128 lp_u128;

/* One unpacked operand: value (-1)^sign * sig * 2^exp for cls 0. */
typedef struct {
    int cls;        /* 0 finite, 1 infinite, 2 NaN                        */
    int sign;
    int snan;       /* a signalling NaN (IEEE NaN encodings only)        */
    int32_t exp;
    uint64_t sig;   /* odd, or 0 for a zero                              */
} operand;

static int code_bytes(const lp_format *f)
{
    if (f->kind == LP_INT)
        return f->bits <= 8 ? 1 : 2;
    return f->nbits <= 8 ? 1 : f->nbits <= 16 ? 2 : 4;
}

LP_INLINE int64_t load_code(const lp_format *f, const void *p, int64_t i)
{
    int size = code_bytes(f);
    int sgn = f->kind == LP_INT && f->is_signed;
    if (size == 1)
        return sgn ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
    if (size == 2)
        return sgn ? ((const int16_t *)p)[i] : ((const uint16_t *)p)[i];
    return ((const uint32_t *)p)[i];
}

LP_INLINE void store_code(const lp_format *f, void *p, int64_t i,
                          int64_t code)
{
    switch (code_bytes(f)) {
    case 1: ((uint8_t *)p)[i] = (uint8_t)code; break;
    case 2: ((uint16_t *)p)[i] = (uint16_t)code; break;
    default: ((uint32_t *)p)[i] = (uint32_t)code; break;
    }
}

/* 1. unpack: the exact value (lp_decode_one, exact in binary64) split by
 * lp_unpack_bits, trailing zeros dropped so that sig has at most 24 bits.
 * e4m3fn 0b0_0111_100 = 1.5: binary64 sig 0x18000000000000 at 2^-52 ->
 * sig = 3, exp = -1.  IEEE NaNs are signalling with the top mantissa bit
 * clear (e5m2 0b0_11111_01). */
static void unpack_code(const lp_format *f, int64_t code, operand *x)
{
    x->exp = 0;
    x->sig = 0;
    if (f->layout == LP_LAYOUT_BINARY16 || f->layout == LP_LAYOUT_BINARY32
        || f->layout == LP_LAYOUT_TRUNC32) {
        /* IEEE layouts: the code's own fields */
        x->cls = lp_unpack_bits((uint64_t)code, f->ebits, f->mbits,
                                &x->sign, &x->exp, &x->sig);
    } else {
        double v = lp_decode_one(f, code);
        x->cls = lp_unpack_bits(lp_f64_bits(v), 11, 52, &x->sign, &x->exp,
                                &x->sig);
    }
    x->snan = x->cls == 2 && f->kind == LP_FLOAT && f->nans == LP_NANS_IEEE
              && f->mbits > 0 && !((code >> (f->mbits - 1)) & 1);
    if (x->cls == 0 && x->sig) {
        int tz = __builtin_ctzll(x->sig);
        x->sig >>= tz;
        x->exp += tz;
    } else if (x->cls == 0) {
        x->sig = 0;
    }
}

LP_INLINE int bitlen64(uint64_t x)
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

LP_INLINE int bitlen128(lp_u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? 128 - __builtin_clzll(hi) : bitlen64((uint64_t)x);
}

/* x >> r with the bits shifted out OR-ed into bit 0 (r >= 0). */
LP_INLINE lp_u128 shift_right_jam(lp_u128 x, int r)
{
    if (r <= 0)
        return x;
    if (r >= 128)
        return x != 0;
    return (x >> r) | (lp_u128)((x & (((lp_u128)1 << r) - 1)) != 0);
}

/* 3. The exact sum of two non-zero values sa * ma * 2^ea + sb * mb * 2^eb
 * (ma, mb < 2^63).  The larger (by msb) goes to bit 125, so that its low
 * bit is 0; the smaller is shifted to it, jammed when it reaches below
 * bit 0: then it lies 125 bits below the larger's msb and 36 below the
 * last bit the stochastic fraction reads, and the result, odd, lies in
 * the same interval between two even multiples of 2^e as the exact sum.
 * fp16 1 + 2^-24: X = 2^125 at 2^-125, Y = 2^101: w = 2^125 + 2^101.
 * Returns 0 for an exact zero. */
static int add_exact(int sa, int32_t ea, uint64_t ma, int sb, int32_t eb,
                     uint64_t mb, int *sign, int32_t *e, lp_u128 *w)
{
    int la = bitlen64(ma), lb = bitlen64(mb);
    if (ea + la < eb + lb) {
        int ts = sa; sa = sb; sb = ts;
        int32_t te = ea; ea = eb; eb = te;
        uint64_t tm = ma; ma = mb; mb = tm;
        int tl = la; la = lb; lb = tl;
    }
    int sx = 126 - la;                  /* msb of X at bit 125 */
    lp_u128 X = (lp_u128)ma << sx;
    int32_t e0 = ea - sx;
    int64_t dy = (int64_t)eb - e0;
    lp_u128 Y = dy >= 0 ? (lp_u128)mb << dy
                        : shift_right_jam(mb, dy < -200 ? 200 : (int)-dy);
    *e = e0;
    if (sa == sb) {
        *w = X + Y;
        *sign = sa;
    } else if (X >= Y) {
        *w = X - Y;
        *sign = sa;
    } else {
        *w = Y - X;
        *sign = sb;
    }
    return *w != 0;
}

/* 3. The exact quotient ma / mb as w * 2^e, jammed: the dividend at bit
 * 126 gives at least 102 quotient bits, then one more bit for the sticky
 * (w = 2q + (remainder != 0): q < value < q + 1 reads as q + 1/2).  fp16
 * 1/3: w = 2 * floor(2^126 / 3) + 1 at 2^-127. */
static void div_exact(int32_t ea, uint64_t ma, int32_t eb, uint64_t mb,
                      int32_t *e, lp_u128 *w)
{
    int s = 127 - bitlen64(ma);
    lp_u128 num = (lp_u128)ma << s;
    lp_u128 q = num / mb, r = num % mb;
    *w = (q << 1) | (lp_u128)(r != 0);
    *e = ea - s - eb - 1;
}

/* 3. The exact square root of m * 2^ex (m != 0) as w * 2^e, jammed:
 * bit-by-bit integer square root of m * 2^(2T), T = 90, so that w holds
 * at least 90 bits; the remainder after the last step is the sticky.
 * fp16 sqrt(2): m = 1, ex = 1 -> m = 2, ex = 0; root = floor(sqrt(2) *
 * 2^90), w = 2 root + 1 at 2^-91. */
static void sqrt_exact(int32_t ex, uint64_t m, int32_t *e, lp_u128 *w)
{
    enum { T = 90 };
    if (ex & 1) {
        m <<= 1;
        ex -= 1;
    }
    int pairs = (bitlen64(m) + 1) / 2;
    lp_u128 root = 0, rem = 0;
    for (int i = pairs - 1; i >= -T; i--) {
        uint64_t two = i >= 0 ? (m >> (2 * i)) & 3 : 0;
        rem = (rem << 2) | two;
        lp_u128 trial = (root << 2) | 1;
        root <<= 1;
        if (rem >= trial) {
            rem -= trial;
            root |= 1;
        }
    }
    *w = (root << 1) | (lp_u128)(rem != 0);
    *e = ex / 2 - T - 1;
}

/* floor(frac * 2^64), frac the part of w * 2^e below 2^q in units of 2^q
 * (the dropped fraction of stochastic rounding at quantum 2^q). */
static uint64_t sr_fraction(int32_t e, lp_u128 w, int32_t q)
{
    int64_t shift = (int64_t)q - e;      /* bits of w below the quantum */
    if (shift <= 0)
        return 0;
    if (shift <= 64) {
        lp_u128 rest = w & (((lp_u128)1 << shift) - 1);
        return (uint64_t)(rest << (64 - shift));
    }
    if (shift < 128) {
        lp_u128 rest = w & (((lp_u128)1 << shift) - 1);
        return (uint64_t)(rest >> (shift - 64));
    }
    if (shift < 192)
        return (uint64_t)(w >> (shift - 64));
    return 0;
}

/* 4. round sign * w * 2^e (w != 0, maybe jammed) once to f.  Stochastic
 * rounding: the core's quantum q for |v| (the binade, never below emin),
 * the dropped fraction d = floor(frac * 2^64) from w, the core's compare
 * (lp_sr_less on the top rbits bits); then the rounding toward zero, or
 * away from it, of the same value by the core.  Rounding toward zero that
 * still overflows (the lower neighbour above max) is redone away from
 * zero, since stochastic rounding overflows to infinity (lp_overflow_to_inf).
 * Its flags are those of the rounding it picked, but for underflow with
 * tininess after rounding in the binade just below 2^emin: there the core
 * decides as lp_encode's does (lp_tiny), rounding to mbits + 1 bits with
 * an unbounded exponent, stochastically with the same random bits, so
 * that lp.convert and lp.encode of one value give the same flags. */
static int64_t round_wide(const lp_format *f, const lp_opts *o, int sign,
                          int32_t e, lp_u128 w, uint64_t rnd, int *err,
                          int *flags)
{
    int n = bitlen128(w);
    uint64_t sig;
    int32_t exp;
    if (n <= 64) {
        sig = (uint64_t)w;
        exp = e;
    } else {
        sig = (uint64_t)shift_right_jam(w, n - 64);
        exp = e + (n - 64);
    }
    if (o->rounding != LP_SR || f->kind != LP_FLOAT)
        return lp_round_any_flags(f, o, 0, sign, exp, sig, rnd, err, flags);
    int32_t E = e + n - 1;
    int32_t q = (E > f->emin ? E : f->emin) - f->mbits;
    uint64_t d = sr_fraction(e, w, q);
    uint32_t mh, ml;
    lp_sr_masks(o->rbits, &mh, &ml);
    int away = (int)lp_sr_less((uint32_t)(rnd >> 32), (uint32_t)rnd,
                               (uint32_t)(d >> 32), (uint32_t)d, mh, ml);
    lp_opts od = *o;
    int away_mode = sign ? LP_RD : LP_RU;
    od.rounding = away ? away_mode : LP_RZ;
    int e1 = 0, f1 = 0;
    int64_t code = lp_round_any_flags(f, &od, 0, sign, exp, sig, 0, &e1,
                                      &f1);
    if (!away && (f1 & LP_FLAG_OVERFLOW)) {
        od.rounding = away_mode;
        e1 = 0;
        f1 = 0;
        code = lp_round_any_flags(f, &od, 0, sign, exp, sig, 0, &e1, &f1);
    }
    if (!o->tininess_before && E == f->emin - 1 && (f1 & LP_FLAG_INEXACT)) {
        /* the top mbits + 1 bits all ones, and the stochastic rounding
         * at 2^(E - mbits) goes up: the value rounds to 2^emin */
        uint64_t ones = ((uint64_t)2 << f->mbits) - 1;
        int top = n - 1 - f->mbits;
        uint64_t mf = top >= 0 ? (uint64_t)(w >> top)
                               : (uint64_t)w << -top;
        uint64_t d1 = sr_fraction(e, w, E - f->mbits);
        int tiny = mf != ones
                   || !lp_sr_less((uint32_t)(rnd >> 32), (uint32_t)rnd,
                                  (uint32_t)(d1 >> 32), (uint32_t)d1, mh,
                                  ml);
        f1 = (f1 & ~LP_FLAG_UNDERFLOW) | (tiny ? LP_FLAG_UNDERFLOW : 0);
    }
    *err |= e1;
    *flags |= f1;
    return code;
}

/* Results of class NaN / infinity / zero through the core (its flags:
 * INVALID where the format has no such value). */
LP_INLINE int64_t nan_result(const lp_format *f, const lp_opts *o,
                             int invalid, int *err, int *flags)
{
    if (invalid)
        *flags |= LP_FLAG_INVALID;
    return lp_round_any_flags(f, o, 2, 0, 0, 0, 0, err, flags);
}

LP_INLINE int64_t inf_result(const lp_format *f, const lp_opts *o, int sign,
                             int *err, int *flags)
{
    return lp_round_any_flags(f, o, 1, sign, 0, 0, 0, err, flags);
}

LP_INLINE int64_t zero_result(const lp_format *f, const lp_opts *o,
                              int sign, int *err, int *flags)
{
    return lp_round_any_flags(f, o, 0, sign, 0, 0, 0, err, flags);
}

/* IEEE 754 6.3: the sign of an exact zero sum x + y of signs sx, sy. */
LP_INLINE int zero_sum_sign(int both_zero, int sx, int sy, int mode)
{
    if (both_zero && sx == sy)
        return sx;
    return mode == LP_RD;
}

/* One operation on unpacked operands (y, z unused by the unary ones). */
static int64_t op_one(int op, const lp_format *f, const lp_opts *o,
                      operand x, operand y, operand z, uint64_t rnd,
                      int *err, int *flags)
{
    int sign;
    int32_t e;
    lp_u128 w;
    switch (op) {
    case LP_OP_CONVERT:
        if (x.cls == 2)
            return nan_result(f, o, x.snan, err, flags);
        if (x.cls == 1)
            return inf_result(f, o, x.sign, err, flags);
        if (!x.sig)
            return zero_result(f, o, x.sign, err, flags);
        return round_wide(f, o, x.sign, x.exp, x.sig, rnd, err, flags);
    case LP_OP_SUB:
        if (y.cls != 2)
            y.sign ^= 1;
        /* fall through */
    case LP_OP_ADD:
        if (x.cls == 2 || y.cls == 2)
            return nan_result(f, o, x.snan | y.snan, err, flags);
        if (x.cls == 1 && y.cls == 1 && x.sign != y.sign)
            return nan_result(f, o, 1, err, flags);
        if (x.cls == 1 || y.cls == 1)
            return inf_result(f, o, x.cls == 1 ? x.sign : y.sign, err,
                              flags);
        if (!x.sig || !y.sig) {
            if (!x.sig && !y.sig)
                return zero_result(f, o, zero_sum_sign(1, x.sign, y.sign,
                                                       o->rounding),
                                   err, flags);
            operand v = x.sig ? x : y;
            return round_wide(f, o, v.sign, v.exp, v.sig, rnd, err, flags);
        }
        if (!add_exact(x.sign, x.exp, x.sig, y.sign, y.exp, y.sig, &sign,
                       &e, &w))
            return zero_result(f, o, o->rounding == LP_RD, err, flags);
        return round_wide(f, o, sign, e, w, rnd, err, flags);
    case LP_OP_MUL:
        if (x.cls == 2 || y.cls == 2)
            return nan_result(f, o, x.snan | y.snan, err, flags);
        sign = x.sign ^ y.sign;
        if (x.cls == 1 || y.cls == 1) {
            if ((x.cls == 0 && !x.sig) || (y.cls == 0 && !y.sig))
                return nan_result(f, o, 1, err, flags);     /* 0 * inf */
            return inf_result(f, o, sign, err, flags);
        }
        if (!x.sig || !y.sig)
            return zero_result(f, o, sign, err, flags);
        return round_wide(f, o, sign, x.exp + y.exp, (lp_u128)x.sig * y.sig,
                          rnd, err, flags);
    case LP_OP_DIV:
        if (x.cls == 2 || y.cls == 2)
            return nan_result(f, o, x.snan | y.snan, err, flags);
        sign = x.sign ^ y.sign;
        if (x.cls == 1)
            return y.cls == 1 ? nan_result(f, o, 1, err, flags)
                              : inf_result(f, o, sign, err, flags);
        if (y.cls == 1)
            return zero_result(f, o, sign, err, flags);
        if (!y.sig) {
            if (!x.sig)
                return nan_result(f, o, 1, err, flags);     /* 0 / 0 */
            *flags |= LP_FLAG_INFINITE;
            return inf_result(f, o, sign, err, flags);
        }
        if (!x.sig)
            return zero_result(f, o, sign, err, flags);
        div_exact(x.exp, x.sig, y.exp, y.sig, &e, &w);
        return round_wide(f, o, sign, e, w, rnd, err, flags);
    case LP_OP_SQRT:
        if (x.cls == 2)
            return nan_result(f, o, x.snan, err, flags);
        if (x.cls == 0 && !x.sig)
            return zero_result(f, o, x.sign, err, flags);   /* sqrt(-0) */
        if (x.sign)
            return nan_result(f, o, 1, err, flags);
        if (x.cls == 1)
            return inf_result(f, o, 0, err, flags);
        sqrt_exact(x.exp, x.sig, &e, &w);
        return round_wide(f, o, 0, e, w, rnd, err, flags);
    default: { /* LP_OP_FMA: x * y + z */
        int zero_inf = (x.cls == 1 && y.cls == 0 && !y.sig)
                       || (y.cls == 1 && x.cls == 0 && !x.sig);
        if (x.cls == 2 || y.cls == 2 || z.cls == 2 || zero_inf)
            return nan_result(f, o, x.snan | y.snan | z.snan | zero_inf,
                              err, flags);
        int sp = x.sign ^ y.sign;
        if (x.cls == 1 || y.cls == 1) {
            if (z.cls == 1 && z.sign != sp)
                return nan_result(f, o, 1, err, flags);
            return inf_result(f, o, sp, err, flags);
        }
        if (z.cls == 1)
            return inf_result(f, o, z.sign, err, flags);
        uint64_t mp = x.sig * y.sig;       /* < 2^48 */
        int32_t ep = x.exp + y.exp;
        if (!mp || !z.sig) {
            if (!mp && !z.sig)
                return zero_result(f, o, zero_sum_sign(1, sp, z.sign,
                                                       o->rounding),
                                   err, flags);
            if (mp)
                return round_wide(f, o, sp, ep, mp, rnd, err, flags);
            return round_wide(f, o, z.sign, z.exp, z.sig, rnd, err, flags);
        }
        if (!add_exact(sp, ep, mp, z.sign, z.exp, z.sig, &sign, &e, &w))
            return zero_result(f, o, o->rounding == LP_RD, err, flags);
        return round_wide(f, o, sign, e, w, rnd, err, flags);
    }
    }
}

static int op_arity(int op)
{
    return op == LP_OP_FMA ? 3
         : (op == LP_OP_SQRT || op == LP_OP_CONVERT) ? 1 : 2;
}

int64_t lp_arith_one(int op, const lp_format *f, const lp_opts *o,
                     const lp_format *fa, int64_t a, const lp_format *fb,
                     int64_t b, const lp_format *fc, int64_t c,
                     int64_t index, int *err, int *flags)
{
    operand x, y, z;
    memset(&y, 0, sizeof y);
    memset(&z, 0, sizeof z);
    int arity = op_arity(op);
    unpack_code(fa, a, &x);
    if (arity >= 2)
        unpack_code(fb, b, &y);
    if (arity >= 3)
        unpack_code(fc, c, &z);
    uint64_t rnd = o->rounding == LP_SR ? lp_random(o->seed, index) : 0;
    return op_one(op, f, o, x, y, z, rnd, err, flags);
}

/* ---- the float32 path: add, sub, mul without flags ----------------------
 *
 * Operands whose values are all float32 numbers (f32_range) are widened to
 * float32; where the float32 result s = a op b is exact (mul: the binary64
 * product, exact for 24-bit significands, narrows to float32 unchanged;
 * add/sub: the TwoSum error is 0 and s is finite and non-zero), s is the
 * exact result and lp_encode rounds it once with its fast paths (the same
 * core, stochastic rounding keyed on the same flat index).  The other
 * elements (NaN, infinities, exact zero sums, results beyond float32's
 * precision) go through op_one.  bfloat16 1 + 2^-8: s = 0x3F808000 exact. */
enum { FAST_BLOCK = 2048 };

static int widen_kind(const lp_format *f)
{
    if (f->kind != LP_FLOAT || !f->f32_range)
        return -1;
    if (f->layout == LP_LAYOUT_BINARY32 || f->layout == LP_LAYOUT_TRUNC32
        || f->layout == LP_LAYOUT_BINARY16)
        return f->layout;
    return f->nbits <= 8 ? 0 : -1;
}

static void widen_f32(const lp_format *f, int kind, const float *lut,
                      const void *p, int64_t i0, int64_t m, float *x)
{
    uint32_t *u = (uint32_t *)x;
    switch (kind) {
    case LP_LAYOUT_BINARY32:
        memcpy(x, (const uint32_t *)p + i0, (size_t)m * 4);
        break;
    case LP_LAYOUT_TRUNC32: {
        int sh = 23 - f->mbits;
        if (f->nbits <= 16) {
            const uint16_t *c = (const uint16_t *)p + i0;
            for (int64_t i = 0; i < m; i++)
                u[i] = (uint32_t)c[i] << sh;
        } else {
            const uint32_t *c = (const uint32_t *)p + i0;
            for (int64_t i = 0; i < m; i++)
                u[i] = c[i] << sh;
        }
        break;
    }
    case LP_LAYOUT_BINARY16: {
        const uint16_t *c = (const uint16_t *)p + i0;
        for (int64_t i = 0; i < m; i++)
            u[i] = lp_f16_to_f32(c[i]);
        break;
    }
    default: {
        const uint8_t *c = (const uint8_t *)p + i0;
        for (int64_t i = 0; i < m; i++)
            x[i] = lut[c[i]];
    }
    }
}

static void fill_lut(const lp_format *f, float *lut)
{
    for (int64_t c = 0; c < 256; c++)
        lut[c] = c < ((int64_t)1 << f->nbits) ? (float)lp_decode_one(f, c)
                                              : 0.0f;
}

LP_CLONES
static int arith_fast(int op, const lp_format *f, const lp_opts *o,
                      const lp_format *fa, const void *a,
                      const lp_format *fb, const void *b, int64_t n,
                      int64_t index0, void *out, int ka, int kb)
{
    float lut_a[256], lut_b[256];
    float x[FAST_BLOCK], y[FAST_BLOCK], s[FAST_BLOCK];
    uint8_t ok[FAST_BLOCK];
    int err = 0, size = code_bytes(f);
    uint64_t key = lp_mix64(o->seed);
    if (ka == 0)
        fill_lut(fa, lut_a);
    if (kb == 0)
        fill_lut(fb, lut_b);
    for (int64_t start = 0; start < n; start += FAST_BLOCK) {
        int64_t m = n - start < FAST_BLOCK ? n - start : FAST_BLOCK;
        widen_f32(fa, ka, lut_a, a, start, m, x);
        widen_f32(fb, kb, lut_b, b, start, m, y);
        if (op == LP_OP_MUL) {
            for (int64_t i = 0; i < m; i++) {
                double p = (double)x[i] * (double)y[i];
                float pf = (float)p;
                s[i] = pf;
                ok[i] = (double)pf == p;
            }
        } else {
            float sg = op == LP_OP_SUB ? -1.0f : 1.0f;
            for (int64_t i = 0; i < m; i++) {
                float u = x[i], v = y[i] * sg;
                float t = u + v, bb = t - u;
                float e = (u - (t - bb)) + (v - bb);
                s[i] = t;
                ok[i] = (e == 0.0f) & (t != 0.0f);  /* e NaN: inf or NaN */
            }
        }
        char *o_blk = (char *)out + start * size;
        err |= lp_encode(f, o, LP_F32, s, m, NULL, index0 + start, o_blk);
        for (int64_t i = 0; i < m; i++) {
            if (ok[i])
                continue;
            operand xo, yo, zo;
            memset(&zo, 0, sizeof zo);
            unpack_code(fa, load_code(fa, a, start + i), &xo);
            unpack_code(fb, load_code(fb, b, start + i), &yo);
            int fl = 0;
            uint64_t rnd = o->rounding == LP_SR
                           ? lp_random_at(o, key, index0 + start + i) : 0;
            store_code(f, o_blk, i, op_one(op, f, o, xo, yo, zo, rnd, &err,
                                           &fl));
        }
    }
    return err;
}

/* fma without flags, the same way in binary64: a * b is exact there (at
 * most 48 bits), s = p + c with its TwoSum error; where the error is 0 and
 * s finite and non-zero, lp_encode rounds the exact s once (LP_F64). */
LP_CLONES
static int fma_fast(const lp_format *f, const lp_opts *o,
                    const lp_format *fa, const void *a, const lp_format *fb,
                    const void *b, const lp_format *fc, const void *c,
                    int64_t n, int64_t index0, void *out, int ka, int kb,
                    int kc)
{
    float lut_a[256], lut_b[256], lut_c[256];
    float x[FAST_BLOCK], y[FAST_BLOCK], z[FAST_BLOCK];
    double s[FAST_BLOCK];
    uint8_t ok[FAST_BLOCK];
    int err = 0, size = code_bytes(f);
    uint64_t key = lp_mix64(o->seed);
    if (ka == 0)
        fill_lut(fa, lut_a);
    if (kb == 0)
        fill_lut(fb, lut_b);
    if (kc == 0)
        fill_lut(fc, lut_c);
    for (int64_t start = 0; start < n; start += FAST_BLOCK) {
        int64_t m = n - start < FAST_BLOCK ? n - start : FAST_BLOCK;
        widen_f32(fa, ka, lut_a, a, start, m, x);
        widen_f32(fb, kb, lut_b, b, start, m, y);
        widen_f32(fc, kc, lut_c, c, start, m, z);
        for (int64_t i = 0; i < m; i++) {
            double u = (double)x[i] * (double)y[i], v = (double)z[i];
            double t = u + v, bb = t - u;
            double e = (u - (t - bb)) + (v - bb);
            s[i] = t;
            ok[i] = (e == 0.0) & (t != 0.0);
        }
        char *o_blk = (char *)out + start * size;
        err |= lp_encode(f, o, LP_F64, s, m, NULL, index0 + start, o_blk);
        for (int64_t i = 0; i < m; i++) {
            if (ok[i])
                continue;
            operand xo, yo, zo;
            unpack_code(fa, load_code(fa, a, start + i), &xo);
            unpack_code(fb, load_code(fb, b, start + i), &yo);
            unpack_code(fc, load_code(fc, c, start + i), &zo);
            int fl = 0;
            uint64_t rnd = o->rounding == LP_SR
                           ? lp_random_at(o, key, index0 + start + i) : 0;
            store_code(f, o_blk, i, op_one(LP_OP_FMA, f, o, xo, yo, zo, rnd,
                                           &err, &fl));
        }
    }
    return err;
}

int64_t lp_arith_packed(int op, const lp_format *f, const lp_opts *o,
                        const lp_format *fa, int64_t a, const lp_format *fb,
                        int64_t b, const lp_format *fc, int64_t c,
                        uint64_t seed, int64_t index)
{
    lp_opts os = *o;
    int err = 0, flags = 0;
    os.seed = seed;
    int64_t code = lp_arith_one(op, f, &os, fa, a, fb, b, fc, c, index,
                                &err, &flags);
    return code | ((int64_t)flags << 32) | ((int64_t)err << 40);
}

int lp_arith(int op, const lp_format *f, const lp_opts *o,
             const lp_format *fa, const void *a, const lp_format *fb,
             const void *b, const lp_format *fc, const void *c, int64_t n,
             int64_t index0, void *out, uint8_t *flags)
{
    if (!flags && op == LP_OP_FMA && f->kind == LP_FLOAT) {
        int ka = widen_kind(fa), kb = widen_kind(fb), kc = widen_kind(fc);
        if (ka >= 0 && kb >= 0 && kc >= 0)
            return fma_fast(f, o, fa, a, fb, b, fc, c, n, index0, out, ka,
                            kb, kc);
    }
    if (!flags && (op == LP_OP_ADD || op == LP_OP_SUB || op == LP_OP_MUL)
        && f->kind == LP_FLOAT && f->f32_range) {
        int ka = widen_kind(fa), kb = widen_kind(fb);
        if (ka >= 0 && kb >= 0)
            return arith_fast(op, f, o, fa, a, fb, b, n, index0, out, ka,
                              kb);
    }
    int err = 0;
    int arity = op_arity(op);
    uint64_t key = lp_mix64(o->seed);
    int sr = o->rounding == LP_SR;
    operand x, y, z;
    memset(&y, 0, sizeof y);
    memset(&z, 0, sizeof z);
    /* formats of at most 8 bits: every code unpacked once */
    const lp_format *fs[3] = {fa, fb, fc};
    operand luts[3][256];
    int use_lut[3] = {0, 0, 0};
    for (int k = 0; k < arity; k++) {
        if (fs[k]->kind == LP_FLOAT && fs[k]->nbits <= 8 && n >= 256) {
            use_lut[k] = 1;
            for (int64_t code = 0; code < ((int64_t)1 << fs[k]->nbits);
                 code++)
                unpack_code(fs[k], code, &luts[k][code]);
        }
    }
    for (int64_t i = 0; i < n; i++) {
        int fl = 0;
        int64_t ca = load_code(fa, a, i);
        if (use_lut[0])
            x = luts[0][ca];
        else
            unpack_code(fa, ca, &x);
        if (arity >= 2) {
            int64_t cb = load_code(fb, b, i);
            if (use_lut[1])
                y = luts[1][cb];
            else
                unpack_code(fb, cb, &y);
        }
        if (arity >= 3) {
            int64_t cc = load_code(fc, c, i);
            if (use_lut[2])
                z = luts[2][cc];
            else
                unpack_code(fc, cc, &z);
        }
        uint64_t rnd = sr ? lp_random_at(o, key, index0 + i) : 0;
        int64_t code = op_one(op, f, o, x, y, z, rnd, &err, &fl);
        store_code(f, out, i, code);
        if (flags)
            flags[i] = (uint8_t)fl;
    }
    return err;
}

int lp_arith_table(int op, const lp_format *f, const lp_opts *o,
                   const lp_format *fa, const lp_format *fb, uint8_t *codes,
                   uint8_t *flags)
{
    if (code_bytes(f) != 1 || fa->nbits > 8 || fb->nbits > 8
        || op_arity(op) != 2 || o->rounding == LP_SR)
        return -1;
    for (int64_t a = 0; a < 256; a++) {
        for (int64_t b = 0; b < 256; b++) {
            int err = 0, fl = 0;
            int64_t code = 0;
            if (a < ((int64_t)1 << fa->nbits) && b < ((int64_t)1 << fb->nbits))
                code = lp_arith_one(op, f, o, fa, a, fb, b, fb, 0, 0, &err,
                                    &fl);
            codes[a * 256 + b] = (uint8_t)code;
            flags[a * 256 + b] = (uint8_t)(fl | (err << 5));
        }
    }
    return 0;
}

LP_CLONES
int lp_arith_lookup(const uint8_t *codes, const uint8_t *tflags,
                    const uint8_t *a, const uint8_t *b, int64_t n,
                    uint8_t *out, uint8_t *flags)
{
    uint32_t acc = 0;
    if (flags) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t k = ((uint32_t)a[i] << 8) | b[i];
            uint8_t t = tflags[k];
            out[i] = codes[k];
            flags[i] = t & 31;
            acc |= t;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            uint32_t k = ((uint32_t)a[i] << 8) | b[i];
            out[i] = codes[k];
            acc |= tflags[k];
        }
    }
    return (int)(acc >> 5);
}
