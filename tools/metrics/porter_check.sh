#!/usr/bin/env bash
# Checks muscle's Porter stemmer (src/metrics/rouge.c) against NLTK's PorterStemmer
# (Debian python3-nltk, the stemmer rouge_score uses) on every distinct token longer
# than 3 characters of the shared Debian, GSM8K and War and Peace texts, and also
# shows how far Debian's libstemmer ("porter") would have been from NLTK when it is
# installed (libstemmer-dev). Needs `make all` first. Prints the disagreements.
# Usage: tools/metrics/porter_check.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
shared="${MUSCLE_SHARED:-../shared}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/stem.c" <<'C'
#include "metrics/rouge.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    static char line[1 << 20], out[1 << 20];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        rouge_porter_stem(line, n, out);
        puts(out);
    }
    return 0;
}
C
gcc -std=c11 -O2 -Isrc "$tmp/stem.c" "$build/libmuscle.a" -lutf8proc -lm -o "$tmp/stem"
/usr/bin/python3 - "$shared" "$tmp" <<'PY'
import glob, json, re, sys
shared, tmp = sys.argv[1], sys.argv[2]
words = set()
def add(s):
    words.update(w for w in re.sub(r"[^a-z0-9]+", " ", s.lower()).split() if len(w) > 3)
for f in sorted(glob.glob(shared + "/data/debian/*.jsonl")) + sorted(glob.glob(shared + "/data/gsm8k/*.jsonl")):
    for line in open(f, encoding="utf-8"):
        for v in json.loads(line).values():
            for s in (v if isinstance(v, list) else [v]):
                if isinstance(s, str): add(s)
add(open(shared + "/corpora/war-and-peace.txt", encoding="utf-8", errors="replace").read())
words = sorted(words)
from nltk.stem import porter
ps = porter.PorterStemmer()
open(tmp + "/words", "w").write("\n".join(words) + "\n")
open(tmp + "/nltk", "w").write("\n".join(ps.stem(w) for w in words) + "\n")
PY
"$tmp/stem" <"$tmp/words" >"$tmp/muscle"
total=$(wc -l <"$tmp/words")
bad=$(paste "$tmp/words" "$tmp/nltk" "$tmp/muscle" | awk -F'\t' '$2 != $3' | tee "$tmp/diff" | wc -l)
head -20 "$tmp/diff"
echo "muscle vs nltk: $bad of $total words differ"
if [ -r /usr/include/libstemmer.h ]; then
  cat >"$tmp/sb.c" <<'C'
#include <libstemmer.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    struct sb_stemmer *s = sb_stemmer_new("porter", "UTF_8");
    static char line[1 << 20];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        puts((const char *)sb_stemmer_stem(s, (const sb_symbol *)line, (int)n));
    }
    return 0;
}
C
  gcc -O2 "$tmp/sb.c" -lstemmer -o "$tmp/sb" && "$tmp/sb" <"$tmp/words" >"$tmp/sb.out"
  sbbad=$(paste "$tmp/words" "$tmp/nltk" "$tmp/sb.out" | awk -F'\t' '$2 != $3' | wc -l)
  echo "libstemmer porter vs nltk: $sbbad of $total words differ"
fi
[ "$bad" -eq 0 ]
