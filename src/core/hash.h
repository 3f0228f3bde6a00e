/* core/hash.h - FNV-1a, the one byte hash of the tree: 64 bits for content fingerprints
 * (training data, examples, settings) and hash-table slots, 32 bits where a table stores
 * 32-bit hashes (tokenizer vocabularies).
 *
 * FNV-1a: h = basis; for each byte b: h = (h ^ b) * prime. The 64-bit form chains: pass the
 * previous result as `h` to hash several pieces as one stream (hash_fnv64(hash_fnv64(B, x), y)
 * equals the hash of x followed by y). Not a defence against chosen collisions. */
#ifndef MUSCLE_CORE_HASH_H
#define MUSCLE_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV64_BASIS 0xcbf29ce484222325ull /* 14695981039346656037 */
#define HASH_FNV64_PRIME 0x100000001b3ull
#define HASH_FNV32_BASIS 2166136261u
#define HASH_FNV32_PRIME 16777619u

/* h continued over p[0..n) (start with HASH_FNV64_BASIS). */
uint64_t hash_fnv64(uint64_t h, const void *p, size_t n);
/* FNV-1a 64 of a NUL-terminated string. */
uint64_t hash_fnv64_str(const char *s);
/* FNV-1a 32 of p[0..n). */
uint32_t hash_fnv32(const void *p, size_t n);

#endif
