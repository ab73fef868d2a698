/* gemm.c -- packing, the one blocked driver of every GEMM, and the block
 * epilogue (API.md section 3; contracts in lowprec.h).
 *
 * The Python layer (lowprec/matmul.py) decodes codes to float32 / float64
 * (exactly), checks shapes and scales, and calls these kernels on ranges of
 * output rows from a thread pool; every call is independent, so any split
 * gives the same bits.
 *
 *   lp_gemm_f32        sequential fused multiply-add in float32 with the
 *                      scale epilogue of each K-block: the "fp32" mode, and
 *                      "exact" when every partial sum is exact in float32
 *   lp_gemm_f64        float64 products: each K-block's sum rounded once to
 *                      float32 and scaled ("exact" when the caller bounded
 *                      the operands so that every partial sum is exact)
 *   lp_gemm_f64_exact  the same over sub-blocks of sliced operands, each
 *                      sub-block's exact float64 sum added exactly into a
 *                      pair of int64 (exact.c) ("exact" for wide formats)
 *   lp_gemm_i32        int32 wrap-around integer product (int_matmul)
 *   lp_scale_acc       the block epilogue on its own
 *
 * All four run one blocked driver (Goto's loop order, as in BLIS).  B is
 * packed in panels of NR columns, chunk by chunk of K (the float GEMMs
 * take B packed once by lp_gemm_pack_b, shared by the threads); each call
 * packs blocks of MC of its rows of A in panels of MR rows.  For each K
 * chunk (KC steps) and A block, the B panels are swept in blocks of about
 * 768 KiB that stay in L2, and within one, each A micro-panel (MR x KC,
 * up to 32 KiB) stays in L1 while the micro-kernel (gemm_tile.h) runs it
 * against every B panel of the block.  Each output element sees its k in
 * increasing order, so the sequential float32 chain of "fp32" is the same
 * whatever the tiling, ISA or thread split.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include "gemm.h"

/* ---- packing ------------------------------------------------------------ */

/* An operand as the caller holds it: float / double values (lut NULL),
 * uint8 codes of the lut's values, or int8 / uint8 integers (elem
 * LP_EL_I16, widened). */
typedef struct gemm_src {
    const void *p;
    const void *lut;
    int is_unsigned;
} gemm_src;

/* dst[i * dstride] = the value of source element off + i * sstride, as the
 * packed type of elem, for i < count. */
static void copy_line(const gemm_src *s, int elem, int64_t off,
                      int64_t sstride, int64_t count, void *dst,
                      int64_t dstride)
{
    const uint8_t *u8 = (const uint8_t *)s->p + off;
    if (elem == LP_EL_F32) {
        float *d = dst;
        if (s->lut) {
            const float *t = s->lut;
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = t[u8[i * sstride]];
        } else {
            const float *v = (const float *)s->p + off;
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = v[i * sstride];
        }
    } else if (elem == LP_EL_F64) {
        double *d = dst;
        if (s->lut) {
            const double *t = s->lut;
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = t[u8[i * sstride]];
        } else {
            const double *v = (const double *)s->p + off;
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = v[i * sstride];
        }
    } else {
        int16_t *d = dst;
        const int8_t *i8 = (const int8_t *)u8;
        if (s->is_unsigned)
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = u8[i * sstride];
        else
            for (int64_t i = 0; i < count; i++)
                d[i * dstride] = i8[i * sstride];
    }
}

/* Steps in groups of kg (1, or 2: int16 pairs): step k sits in group k / kg
 * at k % kg, a short last group padded with zeros. */
static int64_t groups(const lp_gemm_kernel *g, int64_t kc)
{
    return (kc + g->kg - 1) / g->kg;
}

/* Rows [i0, i0+mc) x steps [k0, k0+kc) of a (ld lda) into panels of mr
 * rows: element (i, k) of panel p = i / mr, r = i % mr, at
 * ((p * groups + k / kg) * mr + r) * kg + k % kg; rows past mc are zero. */
static void pack_a(const lp_gemm_kernel *g, int elem, const gemm_src *a,
                   int64_t lda, int64_t i0, int64_t mc, int64_t k0,
                   int64_t kc, void *dst)
{
    const int mr = g->mr, kg = g->kg;
    const int64_t ng = groups(g, kc), np = (mc + mr - 1) / mr;
    memset(dst, 0, (size_t)(np * ng * mr * kg * g->ps));
    for (int64_t i = 0; i < mc; i++) {
        int64_t p = i / mr, r = i % mr;
        char *d = (char *)dst + ((p * ng * mr + r) * kg) * g->ps;
        for (int h = 0; h < kg && h < kc; h++)
            copy_line(a, elem, (i0 + i) * lda + k0 + h, kg,
                      (kc - h + kg - 1) / kg, d + h * g->ps, mr * kg);
    }
}

/* Steps [k0, k0+kc) of b (k x n, ld n) into panels of nr columns, panels
 * [jp0, jp1): element (k, j) of panel jp = j / nr, q = j % nr, at
 * ((jp * groups + k / kg) * nr + q) * kg + k % kg; columns past n are
 * zero. */
static void pack_b(const lp_gemm_kernel *g, int elem, const gemm_src *b,
                   int64_t n, int64_t k0, int64_t kc, void *dst, int64_t jp0,
                   int64_t jp1)
{
    const int nr = g->nr, kg = g->kg;
    const int64_t ng = groups(g, kc);
    for (int64_t jp = jp0; jp < jp1; jp++) {
        int64_t j0 = jp * nr, cols = n - j0 < nr ? n - j0 : nr;
        char *d = (char *)dst + jp * ng * nr * kg * g->ps;
        memset(d, 0, (size_t)(ng * nr * kg * g->ps));
        for (int64_t k = 0; k < kc; k++)
            copy_line(b, elem, (k0 + k) * n + j0, 1, cols,
                      d + (((k / kg) * nr) * kg + k % kg) * g->ps, kg);
    }
}

/* ---- blocking ------------------------------------------------------------
 * For a 48 KiB L1 and a 2 MiB L2 per core (Sapphire Rapids); measured at
 * M = N = K = 1024 and 2048 against OpenBLAS, one thread, CPU time:
 * KC: an A micro-panel (MR x KC) of up to 32 KiB stays in L1 (KC 1024
 * float, 512 double; a multiple of 8 steps, so that int16 pairs never
 * straddle chunks); NB: a block of B panels of about 768 KiB stays in L2
 * (without it the B panels of a whole row of A blocks streamed from L3:
 * float64 at 0.64-0.71x of dgemm at 2048, with it 0.91-0.93x); MC: an A
 * block of about 384 KiB. */

static int64_t kc_max(const lp_gemm_kernel *g)
{
    int64_t kc = 32768 / (g->mr * g->ps) / 8 * 8;
    return kc < 64 ? 64 : kc > 1024 ? 1024 : kc;
}

static int64_t nb_panels(const lp_gemm_kernel *g, int64_t kc)
{
    int64_t nb = 786432 / (kc * g->nr * g->ps);
    return nb < 1 ? 1 : nb;
}

static int64_t mc_max(const lp_gemm_kernel *g, int64_t kc)
{
    int64_t mc = 393216 / (kc * g->ps) / g->mr * g->mr;
    return mc < g->mr ? g->mr : mc;
}

static int64_t norm_bk(int64_t bk, int64_t k)
{
    if (bk <= 0 || bk > k)
        bk = k;
    return bk > 0 ? bk : 1;
}

/* End of the K chunk that starts at k0: whole blocks when they fit in kcmax,
 * else near-equal pieces of one block (multiples of kg steps but the last),
 * so no block straddles a chunk edge unless it is longer than kcmax. */
static int64_t chunk_end(int64_t k0, int64_t k, int64_t bk, int64_t kcmax,
                         int kg)
{
    int64_t end;
    if (bk <= kcmax) {
        end = k0 + (kcmax / bk) * bk;
    } else {
        int64_t bstart = (k0 / bk) * bk;
        int64_t pieces = (bk + kcmax - 1) / kcmax;
        int64_t plen = ((bk + pieces - 1) / pieces + kg - 1) / kg * kg;
        int64_t idx = (k0 - bstart) / plen;
        end = bstart + (idx + 1) * plen;
        if (end > bstart + bk)
            end = bstart + bk;
    }
    return end < k ? end : k;
}

/* Packed B of every chunk: the chunk starting at k0 sits at k0 * npan * nr
 * elements (KC a multiple of kg: only the last chunk has a padded group). */
static void pack_b_chunks(const lp_gemm_kernel *g, int elem,
                          const gemm_src *b, int64_t k, int64_t n, int64_t bk,
                          void *bp, int64_t jp0, int64_t jp1)
{
    int64_t kcmax = kc_max(g), npan = (n + g->nr - 1) / g->nr, k1;
    bk = norm_bk(bk, k);
    for (int64_t k0 = 0; k0 < k; k0 = k1) {
        k1 = chunk_end(k0, k, bk, kcmax, g->kg);
        pack_b(g, elem, b, n, k0, k1 - k0,
               (char *)bp + k0 * npan * g->nr * g->ps, jp0, jp1);
    }
}

/* ---- the block epilogue ------------------------------------------------- */

/* t = R32(p * R32(sa * sb[j])); c = t for the first block, else R32(c + t)
 * (separate roundings: -ffp-contract=off). */
static void epilogue_row(const float *p, float sa, const float *sb, float *c,
                         int64_t n, int first)
{
    if (first)
        for (int64_t j = 0; j < n; j++)
            c[j] = p[j] * (sa * sb[j]);
    else
        for (int64_t j = 0; j < n; j++)
            c[j] = c[j] + p[j] * (sa * sb[j]);
}

void lp_scale_acc(const float *p, const float *as, const float *bs,
                  int64_t n, int64_t nb, int64_t blk, float *c, int64_t row0,
                  int64_t row1)
{
    for (int64_t i = row0; i < row1; i++)
        epilogue_row(p + i * n, as[i * nb + blk], bs + blk * n, c + i * n, n,
                     blk == 0);
}

/* ---- the blocked driver ------------------------------------------------- */

/* What happens at the end of each block of bk steps. */
enum { EPI_SCALE = 0,   /* p (rounded to float32) into the scale epilogue  */
       EPI_RAW = 1,     /* p stored as it is (no blocks)                   */
       EPI_EXACT = 2 }; /* p added exactly into int64 planes; after the sub
                           blocks of a block, rounded once and scaled      */

typedef struct gemm_job {
    lp_gemm_kernel g;
    int elem;
    gemm_src a;
    int64_t m, n, k, bk, nb;
    int mode;
    const float *as, *bs;   /* scales: m x nb and nb x n                   */
    void *c;                /* float32 m x n, or raw: accumulators m x n   */
    void *pbuf;             /* partial sums of blocks spanning chunks      */
    int64_t row0, row1;     /* the rows of this call (pbuf, xbuf)          */
    /* EPI_EXACT: bk is a sub-block; sub of them make a block */
    int64_t sub;
    const int32_t *ua, *ub; /* units 2^(ua[i] + ub[j]) of the sub-blocks   */
    int64_t *xbuf;          /* low and high planes, rows [row0, row1)      */
    lp_exact_row_fn exact_row;
    lp_format f32;
    lp_opts o32;
} gemm_job;

/* The end of block blk of an MR x NR tile whose sums are in ct:
 *   EPI_SCALE  p = R32(sum), then the epilogue of block blk
 *   EPI_EXACT  the exact float64 sum of the sub-block is added into the
 *              int64 planes; after the last sub-block of block b, their
 *              value is rounded once to float32 and goes to the same
 *              epilogue. */
static void block_end(const gemm_job *J, const void *ct, int64_t i, int rows,
                      int64_t j0, int cols, int64_t blk)
{
    const int nr = J->g.nr;
    float p[64];
    int64_t ob = blk;
    int last = 1;
    if (J->mode == EPI_EXACT) {
        ob = blk / J->sub;
        last = blk % J->sub == J->sub - 1;
    }
    for (int r = 0; r < rows; r++) {
        if (J->mode == EPI_EXACT) {
            int64_t plane = (J->row1 - J->row0) * J->n;
            int64_t *lo = J->xbuf + (i + r - J->row0) * J->n + j0;
            int64_t *hi = lo + plane;
            if (blk % J->sub == 0) {
                memset(lo, 0, (size_t)cols * sizeof *lo);
                memset(hi, 0, (size_t)cols * sizeof *hi);
            }
            J->exact_row((const double *)ct + r * nr, lp_pow2(-J->ua[i + r]),
                         J->ub + j0, cols, lo, hi);
            if (!last)
                continue;
            for (int q = 0; q < cols; q++)
                p[q] = lp_planes_to_f32(&J->f32, &J->o32, hi[q], lo[q],
                                        J->ua[i + r] + J->ub[j0 + q]);
        } else if (J->elem == LP_EL_F32) {
            memcpy(p, (const float *)ct + r * nr, (size_t)cols * sizeof *p);
        } else {
            for (int q = 0; q < cols; q++)
                p[q] = (float)((const double *)ct)[r * nr + q];
        }
        epilogue_row(p, J->as[(i + r) * J->nb + ob], J->bs + ob * J->n + j0,
                     (float *)J->c + (i + r) * J->n + j0, cols, ob == 0);
    }
}

/* One MR x NR tile over the chunk [k0, k1): runs each block piece through
 * the micro-kernel and either applies the block epilogue or saves the
 * partial sum for the next chunk. */
static void run_tile(const gemm_job *J, const char *app, const char *bpp,
                     int64_t k0, int64_t k1, int64_t i, int rows, int64_t j0,
                     int cols, void *ct)
{
    const lp_gemm_kernel *g = &J->g;
    const int mr = g->mr, nr = g->nr, ps = g->ps, cs = g->cs;
    const int edge = rows < mr || cols < nr;
    int64_t s1;
    for (int64_t s0 = k0; s0 < k1; s0 = s1) {
        int64_t blk = s0 / J->bk, bstart = blk * J->bk, bend = bstart + J->bk;
        s1 = k1 < bend ? k1 : bend;
        int start = s0 == bstart, end = s1 == bend;
        char *store;
        int64_t srow;
        if (J->mode == EPI_RAW) {
            store = J->c;
            srow = i;
        } else {
            store = J->pbuf;
            srow = i - J->row0;
        }
        if (!start) {
            if (edge)
                memset(ct, 0, (size_t)mr * nr * cs);
            for (int r = 0; r < rows; r++)
                memcpy((char *)ct + (size_t)r * nr * cs,
                       store + ((srow + r) * J->n + j0) * cs,
                       (size_t)cols * cs);
        }
        g->uk(s1 - s0, app + (s0 - k0) * mr * ps, bpp + (s0 - k0) * nr * ps,
              ct, start);
        if (end && J->mode != EPI_RAW) {
            block_end(J, ct, i, rows, j0, cols, blk);
        } else {
            for (int r = 0; r < rows; r++)
                memcpy(store + ((srow + r) * J->n + j0) * cs,
                       (char *)ct + (size_t)r * nr * cs, (size_t)cols * cs);
        }
    }
}

/* A large buffer (partial sums, the integer GEMM's packed B): on
 * Linux in transparent huge pages where the system offers them on request,
 * as NumPy does for its large arrays (4 KiB pages: thousands of page faults
 * a call, measured 10% of a 2048 x 2048 x 2048 float64 product).  Freed by
 * free(). */
static void *big_alloc(size_t size)
{
    void *p = NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)1 << 21;
    if (size >= 2 * huge) {
        size = (size + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, size))
            return NULL;
        madvise(p, size, MADV_HUGEPAGE);
        return p;
    }
#endif
    p = malloc(size);
    return p;
}

static int gemm_drive(gemm_job *J, const void *bp, int64_t row0,
                      int64_t row1)
{
    const lp_gemm_kernel *g = &J->g;
    const int mr = g->mr, nr = g->nr, ps = g->ps, cs = g->cs;
    const int64_t n = J->n, k = J->k;
    if (row1 <= row0 || n <= 0)
        return 0;
    if (k == 0) {
        /* No block: the sum is empty, +0. */
        int64_t osize = J->mode == EPI_RAW ? cs : (int64_t)sizeof(float);
        memset((char *)J->c + row0 * n * osize, 0,
               (size_t)((row1 - row0) * n * osize));
        return 0;
    }
    int64_t kcmax = kc_max(g);
    int64_t kcbuf = k < kcmax ? k : kcmax;   /* every chunk is <= kcmax */
    int64_t mcmax = mc_max(g, kcbuf), nbp = nb_panels(g, kcbuf);
    int64_t npan = (n + nr - 1) / nr;
    char *ap = malloc((size_t)(mcmax * (kcbuf + g->kg) * ps));
    void *ct = NULL;
    J->pbuf = NULL;
    J->row0 = row0;
    J->xbuf = NULL;
    J->row1 = row1;
    int fail = !ap || posix_memalign(&ct, 64, (size_t)mr * nr * cs);
    if (!fail && J->mode != EPI_RAW && J->bk > kcmax) {
        J->pbuf = big_alloc((size_t)(row1 - row0) * n * cs);
        fail = J->pbuf == NULL;
    }
    if (!fail && J->mode == EPI_EXACT) {
        J->xbuf = big_alloc((size_t)(row1 - row0) * n * 2 * sizeof(int64_t));
        fail = J->xbuf == NULL;
    }
    if (fail) {
        free(ap);
        free(ct);
        free(J->pbuf);
        free(J->xbuf);
        return -1;
    }
    int64_t k1;
    for (int64_t k0 = 0; k0 < k; k0 = k1) {
        k1 = chunk_end(k0, k, J->bk, kcmax, g->kg);
        int64_t kc = k1 - k0, kcp = groups(g, kc) * g->kg;
        const char *bpk = (const char *)bp + k0 * npan * nr * ps;
        for (int64_t i0 = row0; i0 < row1; i0 += mcmax) {
            int64_t mc = row1 - i0 < mcmax ? row1 - i0 : mcmax;
            pack_a(g, J->elem, &J->a, k, i0, mc, k0, kc, ap);
            for (int64_t jb = 0; jb < npan; jb += nbp) {
                int64_t jbe = jb + nbp < npan ? jb + nbp : npan;
                for (int64_t ip = 0; ip * mr < mc; ip++) {
                    int64_t i = i0 + ip * mr;
                    int rows = (int)(i0 + mc - i < mr ? i0 + mc - i : mr);
                    const char *app = ap + ip * kcp * mr * ps;
                    for (int64_t jp = jb; jp < jbe; jp++) {
                        int64_t j0 = jp * nr;
                        int cols = (int)(n - j0 < nr ? n - j0 : nr);
                        run_tile(J, app, bpk + jp * kcp * nr * ps, k0, k1, i,
                                 rows, j0, cols, ct);
                    }
                }
            }
        }
    }
    free(ap);
    free(ct);
    free(J->pbuf);
    free(J->xbuf);
    return 0;
}

/* ---- the GEMMs ---------------------------------------------------------- */

static int elem_of_size(int es)
{
    return es == 8 ? LP_EL_F64 : LP_EL_F32;
}

int64_t lp_gemm_panels(int es, int isa, int64_t n)
{
    lp_gemm_kernel g = lp_gemm_kernel_for(elem_of_size(es), isa);
    return (n + g.nr - 1) / g.nr;
}

int64_t lp_gemm_pack_size(int es, int isa, int64_t k, int64_t n)
{
    lp_gemm_kernel g = lp_gemm_kernel_for(elem_of_size(es), isa);
    return k * ((n + g.nr - 1) / g.nr) * g.nr;
}

void lp_gemm_pack_b(int es, int isa, const void *b, const void *lut,
                    int64_t k, int64_t n, int64_t bk, void *bp, int64_t jp0,
                    int64_t jp1)
{
    int elem = elem_of_size(es);
    lp_gemm_kernel g = lp_gemm_kernel_for(elem, isa);
    gemm_src src = {b, lut, 0};
    pack_b_chunks(&g, elem, &src, k, n, bk, bp, jp0, jp1);
}

static void job_init(gemm_job *J, int elem, int isa, const void *a,
                     const void *alut, int64_t m, int64_t n, int64_t k,
                     const float *as, const float *bs, void *c)
{
    memset(J, 0, sizeof *J);
    J->g = lp_gemm_kernel_for(elem, isa);
    J->elem = elem;
    J->a.p = a;
    J->a.lut = alut;
    J->m = m;
    J->n = n;
    J->k = k;
    J->as = as;
    J->bs = bs;
    J->c = c;
}

int lp_gemm_f32(const void *a, const float *alut, const float *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, float *c, int64_t row0, int64_t row1,
                int isa)
{
    gemm_job J;
    job_init(&J, LP_EL_F32, isa, a, alut, m, n, k, as, bs, c);
    J.mode = EPI_SCALE;
    J.bk = norm_bk(bk, k);
    J.nb = k > 0 ? k / J.bk : 0;
    return gemm_drive(&J, bp, row0, row1);
}

int lp_gemm_f64(const void *a, const double *alut, const double *bp,
                int64_t m, int64_t n, int64_t k, int64_t bk, const float *as,
                const float *bs, void *c, int64_t row0, int64_t row1,
                int isa)
{
    gemm_job J;
    job_init(&J, LP_EL_F64, isa, a, alut, m, n, k, as, bs, c);
    J.mode = as == NULL ? EPI_RAW : EPI_SCALE;
    J.bk = norm_bk(J.mode == EPI_RAW ? 0 : bk, k);
    J.nb = k > 0 ? k / J.bk : 0;
    return gemm_drive(&J, bp, row0, row1);
}

int lp_gemm_f64_exact(const double *a, const double *bp, int64_t m,
                      int64_t n, int64_t k, int64_t bk, int64_t sub,
                      const int32_t *ua, const int32_t *ub, const float *as,
                      const float *bs, float *c, int64_t row0, int64_t row1,
                      int isa)
{
    gemm_job J;
    job_init(&J, LP_EL_F64, isa, a, NULL, m, n, k, as, bs, c);
    J.mode = EPI_EXACT;
    J.bk = norm_bk(bk, k);
    J.sub = sub > 0 ? sub : 1;
    J.nb = k > 0 ? k / (J.bk * J.sub) : 0;
    J.ua = ua;
    J.ub = ub;
    J.exact_row = lp_exact_row_for(isa);
    lp_f32_format(&J.f32, &J.o32);
    return gemm_drive(&J, bp, row0, row1);
}

/* Operands widened to int16 and packed in pairs along k, so that one
 * multiply-add of pairs (vpmaddwd: a0*b0 + a1*b1, exact in 32 bits for
 * 8-bit operands) does two steps; sums wrap modulo 2^32 as int32.  Each
 * call packs all of B (its own copy) and runs the driver raw. */
int lp_gemm_i32(const void *a, int a_unsigned, const void *b, int b_unsigned,
                int64_t m, int64_t n, int64_t k, int32_t *c, int64_t row0,
                int64_t row1, int isa)
{
    gemm_job J;
    job_init(&J, LP_EL_I16, isa, a, NULL, m, n, k, NULL, NULL, c);
    J.a.is_unsigned = a_unsigned;
    J.mode = EPI_RAW;
    J.bk = norm_bk(0, k);
    J.nb = 1;
    if (row1 <= row0 || n <= 0 || k == 0)
        return gemm_drive(&J, NULL, row0, row1);
    int64_t npan = (n + J.g.nr - 1) / J.g.nr;
    int16_t *bp = big_alloc((size_t)((k + 1) * npan * J.g.nr) * sizeof *bp);
    if (!bp)
        return -1;
    gemm_src src = {b, NULL, b_unsigned};
    pack_b_chunks(&J.g, LP_EL_I16, &src, k, n, 0, bp, 0, npan);
    int rc = gemm_drive(&J, bp, row0, row1);
    free(bp);
    return rc;
}
