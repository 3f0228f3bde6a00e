/* core/utf8.h - UTF-8 validation, one definition for the tree: strict RFC 3629 (no overlong
 * forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF; a NUL byte is valid). This is
 * what Python's bytes.decode("utf-8"), Rust's str and sentencepiece's IsValidDecodeUTF8 accept.
 * (utf8proc is for case mapping and normalization; these checks need no tables.) */
#ifndef MUSCLE_CORE_UTF8_H
#define MUSCLE_CORE_UTF8_H

#include <stddef.h>

/* Bytes of the one valid character at s[0..n): 1..4, or 0 when n == 0 or s starts with a
 * byte sequence that is not a valid character (or is cut by n). */
size_t utf8_char_len(const void *s, size_t n);
/* Length of the longest valid prefix of s[0..n): == n when all of it is valid, else the
 * offset of the first byte of the first invalid (or cut) character. */
size_t utf8_valid_prefix(const void *s, size_t n);
/* The longest prefix of s[0..len) of at most max bytes that does not end inside a
 * character (s is assumed valid; a prefix of len when len <= max). */
size_t utf8_cut(const void *s, size_t len, size_t max);

/* Decodes as Hugging Face (Python's bytes.decode(errors="replace"), Rust's
 * String::from_utf8_lossy) do: each maximal subpart of an invalid sequence (WHATWG) becomes
 * U+FFFD. Writes to out (room for 3 * n bytes; no terminator) and returns its length.
 * The tokenizer.json / byte-level BPE encoders clean their input with it (tok_utf8_clean);
 * SentencePiece models keep sentencepiece's own rule, one U+FFFD per invalid byte. */
size_t utf8_sanitize(const void *s, size_t n, char *out);
/* Bytes at the end of s[0..n) that start a character not finished yet (a valid prefix of
 * one, 1..3), else 0: a stream holds them back until the next bytes come. */
size_t utf8_incomplete_tail(const void *s, size_t n);

#endif
