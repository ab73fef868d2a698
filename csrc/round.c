/* round.c -- public entry points of the rounding core (round.h). */
#include <string.h>
#include "round.h"

uint64_t lp_random(uint64_t seed, int64_t index)
{
    return lp_random_keyed(lp_mix64(seed), index);
}

void lp_opts_default(lp_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rounding = LP_RNE;
    o->keep_subnormals = 1;
    o->rbits = 64;
}

int64_t lp_round(const lp_format *f, const lp_opts *o, int sign, int32_t exp,
                 uint64_t sig, int64_t index, int *err)
{
    uint64_t rnd = o->rounding == LP_SR
                   ? lp_random_at(o, lp_mix64(o->seed), index) : 0;
    return lp_round_any(f, o, 0, sign != 0, exp, sig, rnd, err);
}

int64_t lp_round_flags(const lp_format *f, const lp_opts *o, int cls,
                       int sign, int32_t exp, uint64_t sig, int64_t index,
                       int *err, int *flags)
{
    uint64_t rnd = o->rounding == LP_SR
                   ? lp_random_at(o, lp_mix64(o->seed), index) : 0;
    return lp_round_any_flags(f, o, cls, sign != 0, exp, sig, rnd, err,
                              flags);
}
