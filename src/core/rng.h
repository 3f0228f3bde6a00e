/* core/rng.h - a small seeded generator (xorshift64*), reproducible everywhere. */
#ifndef MUSCLE_CORE_RNG_H
#define MUSCLE_CORE_RNG_H

#include <stdint.h>

typedef struct { uint64_t s; } Rng;

static inline void rng_seed(Rng *r, uint64_t seed) {
    /* splitmix64 so that nearby seeds give unrelated streams; never zero */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545f4914f6cdd1dull;
}
static inline uint32_t rng_u32(Rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545f4914f6cdd1dull) >> 32);
}
/* uniform in [0, 1) with 24 bits */
static inline float rng_f32(Rng *r) { return (float)(rng_u32(r) >> 8) / 16777216.0f; }
/* standard normal (Box-Muller) */
float rng_normal(Rng *r);

#endif
