/* core/hash.c - FNV-1a (see hash.h). */
#include "core/hash.h"

uint64_t hash_fnv64(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * HASH_FNV64_PRIME;
    return h;
}

uint64_t hash_fnv64_str(const char *s) {
    uint64_t h = HASH_FNV64_BASIS;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * HASH_FNV64_PRIME;
    return h;
}

uint32_t hash_fnv32(const void *p, size_t n) {
    const uint8_t *b = p;
    uint32_t h = HASH_FNV32_BASIS;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * HASH_FNV32_PRIME;
    return h;
}
