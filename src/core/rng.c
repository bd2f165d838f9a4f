/* SPDX-License-Identifier: MIT */
/* rng.c: the library's random numbers: xoshiro256** seeded through splitmix64, the same stream everywhere. */
#include <math.h>
#include "net/net_internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void bp__rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bp__rng_next(uint64_t s[4])
{
    const uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bp__rng_uniform(uint64_t s[4])
{
    return (double)(bp__rng_next(s) >> 11) * 0x1.0p-53;
}

double bp__rng_normal(uint64_t s[4])
{
    /* Box-Muller with u1 in (0, 1]; one of the pair is used, so the stream stays simple. */
    const double u1 = 1.0 - bp__rng_uniform(s), u2 = bp__rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

uint64_t bp__rng_below(uint64_t s[4], uint64_t n)
{
    /* Rejection of the top partial range keeps it unbiased. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do
        r = bp__rng_next(s);
    while (r >= limit);
    return r % n;
}
