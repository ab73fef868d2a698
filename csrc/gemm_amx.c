/* gemm_amx.c -- exact integer GEMM on Intel AMX (AMX-INT8).
 *
 *   lp_amx_available       CPUID + OS support + the tile-data permission
 *   lp_gemm_exact_i32      C = A * B exactly in int64 for |x| < 2^bits,
 *                          bits <= 21: AMX where available, else portable
 *   lp_gemm_exact_i32_ref  the portable int64 loop on its own (the check)
 *
 * Why: e4m3 values are integers times 2^-9 with |v| <= 448 = 229376 * 2^-9,
 * so an exact e4m3 GEMM is an exact GEMM of 18-bit integers.  TDPBSSD
 * multiplies a 16x64 int8 tile by a 64x16 int8 tile into 16x16 int32 in one
 * instruction; the operands are split into int8 digits (limbs) and the limb
 * products recombined exactly in int64.
 *
 * Method (step numbers are referred to in the code):
 *  1. Limbs.  Balanced base-2^8 digits: x = d0 + d1*2^8 + d2*2^16 with
 *     d0 = ((x + 128) & 255) - 128 in [-128, 127], then the same on
 *     (x - d0) / 2^8.  Two low digits span [-128*257, 127*257] =
 *     [-32896, 32639], so for |x| <= 2^bits - 1 the top digit is at most
 *     (2^bits - 1 + 32896) / 2^16, <= 127 up to bits = 22: three int8 limbs
 *     cover bits <= 21.  Likewise two limbs cover bits <= 14 (top digit
 *     <= (2^bits - 1 + 128) / 2^8 <= 64) and one limb bits <= 7.
 *     Example: 229376 = 0b11_10000000_00000000: d0 = 0, d1 = -128
 *     (0b10000000 balanced), d2 = 4: 4*65536 - 128*256 = 229376.
 *  2. Shifts share accumulators.  With L limbs, A*B = sum over s of
 *     2^(8s) * S_s, S_s = sum over i + j = s of A_i * B_j: 2L - 1 int32
 *     tiles (5 for L = 3) plus 3 operand tiles fill the 8 tile registers.
 *  3. Overflow bound.  |limb| <= 128, so |A_i[k] B_j[k]| <= 2^14, and S_s
 *     adds at most L such products per k: |S_s| <= L * 2^14 * KC.  With
 *     KC = 2^15, 3 * 2^14 * 2^15 = 3 * 2^29 < 2^31 - 1: no int32 overflow.
 *     Longer K runs in chunks of KC, each chunk added into int64.
 *  4. Tile layouts.  A row block (16 rows) and k step (64 k) of limb l is
 *     one 16 x 64 byte tile, row r at byte 64r.  B uses the VNNI layout
 *     TDPBSSD wants: tile row q (k = 4q..4q+3) holds for each of 16
 *     columns c its 4 consecutive k at bytes 4c..4c+3, i.e. byte
 *     64q + 4c + t is B[k0 + 4q + t][j0 + c].  Padding is zero.
 *  5. Recombine: C = S_0 + S_1 2^8 + S_2 2^16 + S_3 2^24 + S_4 2^32 in
 *     int64 (|C| <= k (2^bits - 1)^2, checked to fit int64).
 *
 * Each call packs the limbs of its rows of A and all of B (malloc, freed
 * before return), so calls on different row ranges run in parallel.  Each
 * thread loads its tile configuration in the call; the permission to use
 * tile data is per process and requested once.
 */
#include <stdlib.h>
#include <string.h>
#include "lowprec.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define LP_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define LP_AMX 0
#endif

enum {
    TM = 16,            /* rows of a tile (and of an A row block) */
    TN = 16,            /* int32 columns of an accumulator tile */
    TK = 64,            /* int8 k per tile step */
    KC = 1 << 15        /* k per int32 chunk: step 3 */
};

/* ---- checks shared by both paths ---------------------------------------- */

static int limbs_for(int bits)
{
    return bits <= 7 ? 1 : bits <= 14 ? 2 : 3;        /* step 1 */
}

/* 0 when every x[i*ld + j] (i < rows, j < cols) has |x| <= lim. */
static int out_of_range(const int32_t *x, int64_t rows, int64_t cols,
                        int64_t ld, int32_t lim)
{
    uint32_t span = 2u * (uint32_t)lim, bad = 0;
    for (int64_t i = 0; i < rows; i++) {
        const int32_t *p = x + i * ld;
        for (int64_t j = 0; j < cols; j++)
            bad |= (uint32_t)p[j] + (uint32_t)lim > span;
    }
    return bad != 0;
}

/* The return value of lp_gemm_exact_i32 for its arguments; the operand
 * values (its -3 and -4) only when values is set (the AMX path checks
 * them while it packs). */
static int check_args(const int32_t *a, const int32_t *b, int64_t m,
                      int64_t n, int64_t k, int bits, int64_t r0, int64_t r1,
                      int values)
{
    if (m < 0 || n < 0 || k < 0 || bits < 0 || bits > 21 || r0 < 0
        || r1 < r0 || r1 > m)
        return -1;
    int64_t lim = ((int64_t)1 << bits) - 1;
    if (k > 0 && lim * lim > INT64_MAX / k)
        return -1;                                    /* step 5 bound */
    if (!values)
        return 0;
    if (out_of_range(a + r0 * k, r1 - r0, k, k, (int32_t)lim))
        return -3;
    if (r1 > r0 && out_of_range(b, k, n, n, (int32_t)lim))
        return -4;
    return 0;
}

/* ---- portable path ------------------------------------------------------- */

static void gemm_ref(const int32_t *a, const int32_t *b, int64_t n,
                     int64_t k, int64_t *c, int64_t r0, int64_t r1)
{
    for (int64_t i = r0; i < r1; i++) {
        int64_t *ci = c + i * n;
        for (int64_t j = 0; j < n; j++)
            ci[j] = 0;
        for (int64_t kk = 0; kk < k; kk++) {
            int64_t x = a[i * k + kk];
            const int32_t *bk = b + kk * n;
            for (int64_t j = 0; j < n; j++)
                ci[j] += x * bk[j];
        }
    }
}

int lp_gemm_exact_i32_ref(const int32_t *a, const int32_t *b, int64_t m,
                          int64_t n, int64_t k, int bits, int64_t *c,
                          int64_t r0, int64_t r1)
{
    int err = check_args(a, b, m, n, k, bits, r0, r1, 1);
    if (err)
        return err;
    gemm_ref(a, b, n, k, c, r0, r1);
    return 0;
}

/* ---- AMX path ------------------------------------------------------------ */

#if LP_AMX

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* 1 available, -1 not, 0 not yet known.  Racing first callers each do the
 * (idempotent) checks and store the same answer. */
static int amx_state;

static int amx_probe(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return -1;
    if (!(d & (1u << 24)) || !(d & (1u << 25)))       /* AMX-TILE, AMX-INT8 */
        return -1;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))   /* OSXSAVE */
        return -1;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17))              /* XTILECFG, XTILEDATA */
        return -1;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA))
        return -1;
    return 1;
}

int lp_amx_available(void)
{
    int s = __atomic_load_n(&amx_state, __ATOMIC_ACQUIRE);
    if (s == 0) {
        s = amx_probe();
        __atomic_store_n(&amx_state, s, __ATOMIC_RELEASE);
    }
    return s > 0;
}

/* The 64-byte tile configuration (palette 1): every tile is 16 rows of 64
 * bytes, operands and int32 accumulators alike. */
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
    uint8_t reserved2[16];
};

#define AMX_TARGET __attribute__((target("amx-tile,amx-int8,avx512f," \
                                         "avx512bw,avx512vl,avx512dq,bmi2")))

/* Step 1 as bytes: the low byte of x is the byte of its balanced digit d
 * (d = x mod 2^8 in [-128, 127]), and the rest is (x - d) / 2^8 =
 * (x + 128) >> 8 (arithmetic shift, as GCC and Clang define it).
 * Example: x = -32896 = -128 - 128 * 2^8: bytes 0x80, 0x80, then 0. */

/* Sixteen int32 lanes (GCC / Clang vector extensions, compiled for
 * AVX-512 by the target attribute of the functions that use them). */
typedef int32_t v16si __attribute__((vector_size(64)));
typedef uint32_t v16su __attribute__((vector_size(64)));

/* Step 4, A: rows [r0, r1) into nrb row blocks x nks k steps x L limbs.
 * Returns 1 when an element has |x| > lim (the packing is then void). */
AMX_TARGET
static int pack_a(const int32_t *a, int64_t k, int64_t r0, int64_t r1,
                  int L, int64_t nks, int32_t lim, uint8_t *ap)
{
    uint32_t ulim = (uint32_t)lim, span = 2u * ulim, bad = 0;
    int64_t nrb = (r1 - r0 + TM - 1) / TM;
    memset(ap, 0, (size_t)(nrb * nks * L) * TM * TK);
    for (int64_t i = r0; i < r1; i++) {
        int64_t rb = (i - r0) / TM, r = (i - r0) % TM;
        const int32_t *ai = a + i * k;
        for (int64_t ks = 0; ks < nks; ks++) {
            int64_t k0 = ks * TK, kn = k - k0 < TK ? k - k0 : TK;
            uint8_t *t = ap + ((rb * nks + ks) * L) * TM * TK + r * TK;
            const int32_t *x = ai + k0;
            /* step 1 as bytes, one loop per limb count so that each
             * vectorises */
            if (L == 3)
                for (int64_t kk = 0; kk < kn; kk++) {
                    int32_t x1 = (x[kk] + 128) >> 8;
                    bad |= (uint32_t)x[kk] + ulim > span;
                    t[kk] = (uint8_t)x[kk];
                    t[1024 + kk] = (uint8_t)x1;
                    t[2048 + kk] = (uint8_t)((x1 + 128) >> 8);
                }
            else if (L == 2)
                for (int64_t kk = 0; kk < kn; kk++) {
                    bad |= (uint32_t)x[kk] + ulim > span;
                    t[kk] = (uint8_t)x[kk];
                    t[1024 + kk] = (uint8_t)((x[kk] + 128) >> 8);
                }
            else
                for (int64_t kk = 0; kk < kn; kk++) {
                    bad |= (uint32_t)x[kk] + ulim > span;
                    t[kk] = (uint8_t)x[kk];
                }
        }
    }
    return bad != 0;
}

/* Step 4, B: all of B into ncb column blocks x nks k steps x L limbs, each
 * tile in the VNNI layout: the 32-bit word q*16 + c of a tile holds the
 * bytes of B[4q + t][c], t = 0..3, from low to high (little endian).
 * Returns 1 when an element has |x| > lim. */
AMX_TARGET
static int pack_b(const int32_t *b, int64_t n, int64_t k, int L,
                  int64_t nks, int32_t lim, uint32_t *bp)
{
    v16su bad = {0};
    uint32_t ulim = (uint32_t)lim, span = 2u * ulim;
    int64_t ncb = (n + TN - 1) / TN;
    memset(bp, 0, (size_t)(ncb * nks * L) * TM * TK);
    /* Eight column blocks at a time: the stores go to eight sequential
     * streams and the loads to 512-byte pieces of rows of b. */
    for (int64_t cb0 = 0; cb0 < ncb; cb0 += 8)
    for (int64_t k0 = 0; k0 < k; k0 += 4) {
        int64_t ks = k0 / TK, q = (k0 % TK) / 4;
        for (int64_t cb = cb0; cb < cb0 + 8 && cb < ncb; cb++) {
            int64_t j0 = cb * TN, jn = n - j0 < TN ? n - j0 : TN;
            v16si x[4];
            for (int t = 0; t < 4; t++) {
                x[t] = (v16si){0};
                if (k0 + t < k && jn == TN)
                    memcpy(&x[t], b + (k0 + t) * n + j0, sizeof x[t]);
                else if (k0 + t < k)
                    memcpy(&x[t], b + (k0 + t) * n + j0, (size_t)jn * 4);
            }
            for (int t = 0; t < 4; t++)
                bad |= (v16su)((v16su)x[t] + ulim > span);
            uint32_t *w = bp + ((cb * nks + ks) * L) * 256 + q * 16;
            for (int l = 0; l < L; l++) {
                v16su v = ((v16su)x[0] & 255) | ((v16su)x[1] & 255) << 8
                          | ((v16su)x[2] & 255) << 16 | (v16su)x[3] << 24;
                memcpy(w + l * 256, &v, sizeof v);
                for (int t = 0; t < 4; t++)
                    x[t] = (x[t] + 128) >> 8;        /* step 1 as bytes */
            }
        }
    }
    uint32_t any = 0;
    for (int c = 0; c < TN; c++)
        any |= bad[c];
    return any != 0;
}

/* 64-byte aligned memory for packed operands; from 2 MiB on, aligned to
 * and advised as transparent huge pages, which saves most of the page
 * faults of first touch (a 2048 x 2048 B packs into 12 MiB). */
static void *packed_alloc(size_t bytes)
{
    size_t huge = (size_t)1 << 21;
    void *p = NULL;
    if (bytes >= huge) {
        bytes = (bytes + huge - 1) & ~(huge - 1);
        if (posix_memalign(&p, huge, bytes))
            return NULL;
        madvise(p, bytes, MADV_HUGEPAGE);       /* a hint: may fail */
        return p;
    }
    return posix_memalign(&p, 64, bytes ? bytes : 64) ? NULL : p;
}

/* Tile loops of one 16 x 16 output block over k steps [0, nks): the limb
 * tiles of step ks are at a + ks*L*1024 and b + ks*L*1024; the 2L - 1
 * shift sums (step 2) are stored to s[shift*256 + r*16 + c]. */
AMX_TARGET
static void tiles_l3(const uint8_t *a, const uint8_t *b, int64_t nks,
                     int32_t *s)
{
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_zero(4);
    for (int64_t ks = 0; ks < nks; ks++) {
        const uint8_t *a0 = a + ks * 3 * 1024, *b0 = b + ks * 3 * 1024;
        const uint8_t *a1 = a0 + 1024, *a2 = a0 + 2048;
        const uint8_t *b1 = b0 + 1024, *b2 = b0 + 2048;
        /* Nine limb products through three operand tiles (5, 6, 7)
         * with eight loads (fewest for three registers; the tile loads
         * share the L2 bandwidth the loop is bound by).  Tile s holds S_s,
         * and the three updates of S_2 (and two of S_1, S_3) are three
         * products apart, also across k steps, so that each waits less
         * on the latency of the one before. */
        _tile_loadd(5, a0, 64);
        _tile_loadd(6, b0, 64);
        _tile_dpbssd(0, 5, 6);              /* A0 B0 */
        _tile_loadd(7, b1, 64);
        _tile_dpbssd(1, 5, 7);              /* A0 B1 */
        _tile_loadd(7, b2, 64);
        _tile_dpbssd(2, 5, 7);              /* A0 B2 */
        _tile_loadd(5, a1, 64);
        _tile_dpbssd(3, 5, 7);              /* A1 B2 */
        _tile_dpbssd(1, 5, 6);              /* A1 B0 */
        _tile_loadd(6, b1, 64);
        _tile_dpbssd(2, 5, 6);              /* A1 B1 */
        _tile_loadd(5, a2, 64);
        _tile_dpbssd(3, 5, 6);              /* A2 B1 */
        _tile_dpbssd(4, 5, 7);              /* A2 B2 */
        _tile_loadd(6, b0, 64);
        _tile_dpbssd(2, 5, 6);              /* A2 B0 */
    }
    _tile_stored(0, s, 64); _tile_stored(1, s + 256, 64);
    _tile_stored(2, s + 512, 64); _tile_stored(3, s + 768, 64);
    _tile_stored(4, s + 1024, 64);
}

AMX_TARGET
static void tiles_l2(const uint8_t *a, const uint8_t *b, int64_t nks,
                     int32_t *s)
{
    _tile_zero(0); _tile_zero(1); _tile_zero(2);
    for (int64_t ks = 0; ks < nks; ks++) {
        const uint8_t *a0 = a + ks * 2 * 1024, *b0 = b + ks * 2 * 1024;
        _tile_loadd(3, a0, 64);
        _tile_loadd(4, a0 + 1024, 64);
        _tile_loadd(5, b0, 64);
        _tile_loadd(6, b0 + 1024, 64);
        _tile_dpbssd(0, 3, 5);              /* A0 B0 */
        _tile_dpbssd(1, 3, 6);              /* A0 B1 */
        _tile_dpbssd(1, 4, 5);              /* A1 B0 */
        _tile_dpbssd(2, 4, 6);              /* A1 B1 */
    }
    _tile_stored(0, s, 64); _tile_stored(1, s + 256, 64);
    _tile_stored(2, s + 512, 64);
}

AMX_TARGET
static void tiles_l1(const uint8_t *a, const uint8_t *b, int64_t nks,
                     int32_t *s)
{
    _tile_zero(0);
    for (int64_t ks = 0; ks < nks; ks++) {
        _tile_loadd(1, a + ks * 1024, 64);
        _tile_loadd(2, b + ks * 1024, 64);
        _tile_dpbssd(0, 1, 2);
    }
    _tile_stored(0, s, 64);
}

/* Step 5 on one block: c[r*n + j] (+)= sum over shifts of s * 2^(8 shift)
 * for r < rows, j < cols. */
AMX_TARGET
static void combine(const int32_t *s, int L, int add, int64_t *c, int64_t n,
                    int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *p = s + r * TN;
        int64_t v[TN], *cr = c + r * n;
        for (int j = 0; j < TN; j++)
            v[j] = p[j];
        for (int sh = 1; sh < 2 * L - 1; sh++)
            for (int j = 0; j < TN; j++)
                v[j] += (int64_t)p[sh * 256 + j] * ((int64_t)1 << (8 * sh));
        if (add)
            for (int64_t j = 0; j < cols; j++)
                cr[j] += v[j];
        else
            for (int64_t j = 0; j < cols; j++)
                cr[j] = v[j];
    }
}

AMX_TARGET
static int gemm_amx(const int32_t *a, const int32_t *b, int64_t n, int64_t k,
                    int bits, int64_t *c, int64_t r0, int64_t r1)
{
    int L = limbs_for(bits);
    int64_t nks = (k + TK - 1) / TK;
    int64_t nrb = (r1 - r0 + TM - 1) / TM, ncb = (n + TN - 1) / TN;
    size_t tile = TM * TK;
    void *ap_ = packed_alloc((size_t)(nrb * nks * L) * tile);
    void *bp_ = packed_alloc((size_t)(ncb * nks * L) * tile);
    if (!ap_ || !bp_) {
        free(ap_);
        free(bp_);
        return -2;
    }
    uint8_t *ap = ap_;
    int32_t lim = (int32_t)(((int64_t)1 << bits) - 1);
    int err = pack_a(a, k, r0, r1, L, nks, lim, ap) ? -3
          : pack_b(b, n, k, L, nks, lim, bp_) ? -4 : 0;
    if (err) {
        free(ap_);
        free(bp_);
        return err;
    }
    const uint8_t *bp = bp_;

    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = TM;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);

    /* Rows in groups whose packed A (about 1 MiB) stays in L2 while the
     * B panel of each column block streams past it. */
    int64_t a_rb = nks * L * (int64_t)tile;          /* bytes per row block */
    int64_t grp = (1 << 20) / (a_rb > 0 ? a_rb : 1);
    if (grp < 1)
        grp = 1;
    int64_t kcs = KC / TK;                           /* k steps per chunk */
    int32_t s[5 * 256] __attribute__((aligned(64)));
    for (int64_t g0 = 0; g0 < nrb; g0 += grp) {
        int64_t g1 = g0 + grp < nrb ? g0 + grp : nrb;
        for (int64_t cb = 0; cb < ncb; cb++) {
            int64_t cols = n - cb * TN < TN ? n - cb * TN : TN;
            for (int64_t rb = g0; rb < g1; rb++) {
                int64_t i0 = r0 + rb * TM;
                int64_t rows = r1 - i0 < TM ? r1 - i0 : TM;
                for (int64_t ks = 0; ks < nks; ks += kcs) {
                    int64_t nk = nks - ks < kcs ? nks - ks : kcs;
                    const uint8_t *at = ap + (rb * nks + ks) * L * tile;
                    const uint8_t *bt = bp + (cb * nks + ks) * L * tile;
                    if (L == 3)
                        tiles_l3(at, bt, nk, s);
                    else if (L == 2)
                        tiles_l2(at, bt, nk, s);
                    else
                        tiles_l1(at, bt, nk, s);
                    combine(s, L, ks > 0, c + i0 * n + cb * TN, n, rows,
                            cols);
                }
            }
        }
    }
    _tile_release();
    free(ap_);
    free(bp_);
    return 0;
}

#else

int lp_amx_available(void)
{
    return 0;
}

#endif /* LP_AMX */

int lp_gemm_exact_i32(const int32_t *a, const int32_t *b, int64_t m,
                      int64_t n, int64_t k, int bits, int64_t *c, int64_t r0,
                      int64_t r1)
{
    int err = check_args(a, b, m, n, k, bits, r0, r1, 0);
    if (err)
        return err;
    if (r1 == r0)
        return 0;
#if LP_AMX
    if (k > 0 && n > 0 && lp_amx_available())
        return gemm_amx(a, b, n, k, bits, c, r0, r1);
#endif
    return lp_gemm_exact_i32_ref(a, b, m, n, k, bits, c, r0, r1);
}
