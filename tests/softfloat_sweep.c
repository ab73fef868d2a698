/* softfloat_sweep.c -- Berkeley SoftFloat's float16 results and flags for
 * every pair (a, b), a0 <= a < a1, 0 <= b < 65536, in C speed, for
 * tests/test_softfloat_all.py.  The SoftFloat functions and its flags
 * variable are those of softfloatpy's extension module (exported C
 * symbols), passed in by address; the rounding and tininess modes are set
 * by the caller in SoftFloat's own globals. */
#include <stdint.h>

typedef struct { uint16_t v; } float16_t;        /* SoftFloat's type */
typedef float16_t (*op16)(float16_t, float16_t);

void sweep16(void *fn, volatile uint8_t *exception_flags, uint32_t a0,
             uint32_t a1, uint16_t *out, uint8_t *flags)
{
    op16 f = (op16)fn;
    int64_t k = 0;
    for (uint32_t a = a0; a < a1; a++) {
        float16_t x = {(uint16_t)a};
        for (uint32_t b = 0; b < 65536; b++, k++) {
            float16_t y = {(uint16_t)b};
            *exception_flags = 0;
            out[k] = f(x, y).v;
            flags[k] = *exception_flags;
        }
    }
}
