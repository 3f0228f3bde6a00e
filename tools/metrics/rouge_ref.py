#!/usr/bin/python3
"""Independent reference for muscle's ROUGE: writes tests/fixtures/metrics/rouge_cases.jsonl.

Implements the definitions of Google's `rouge_score` package (rouge/tokenize.py and
rouge/rouge_scorer.py) from scratch:
  - tokens: text.lower(); every run of characters outside [a-z0-9] -> one space;
    split on whitespace; with stemming, tokens longer than 3 characters go through
    nltk's PorterStemmer() (default mode NLTK_EXTENSIONS, as rouge_score builds it);
    keep tokens matching ^[a-z0-9]+$;
  - ROUGE-N: clipped overlap m = sum over target n-grams of min(count_t, count_p);
    P = m / max(#pred n-grams, 1), R = m / max(#target n-grams, 1);
  - ROUGE-L: LCS length l of the token lists; P = l / #pred, R = l / #target; all 0
    when either list is empty;
  - F = 2PR / (P + R), 0 when P + R = 0.
Cases: hand-written edge cases, then pairs built from the synopses ("target") of
../shared/data/debian/debian-sum.test.jsonl: a synopsis against a perturbed copy
of itself, against another synopsis, and against its package's long description.
Every pair is written twice, without and with stemming. Deterministic (fixed seed).
Also writes tests/fixtures/metrics/porter_cases.tsv ("word<TAB>nltk stem"): 3000
words of the shared Debian/GSM8K texts and 2000 synthetic words that stack the
suffixes the rules look at (tools/metrics/porter_check.sh checks every shared word).

Needs Debian's python3-nltk. Usage (from the project root):
  /usr/bin/python3 tools/metrics/rouge_ref.py [OUT.jsonl [PORTER.tsv]]
"""
import collections
import json
import os
import random
import re
import sys

from nltk.stem import porter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("MUSCLE_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "metrics", "rouge_cases.jsonl")
PORTER_OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(OUT), "porter_cases.tsv")

STEMMER = porter.PorterStemmer()


def tokens(text, stem):
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    out = []
    for t in text.split():
        if stem and len(t) > 3:
            t = STEMMER.stem(t)
        if re.fullmatch(r"[a-z0-9]+", t):
            out.append(t)
    return out


def f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_n(t, p, n):
    ct = collections.Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
    cp = collections.Counter(tuple(p[i:i + n]) for i in range(len(p) - n + 1))
    m = sum(min(c, cp[g]) for g, c in ct.items())
    prec = m / max(sum(cp.values()), 1)
    rec = m / max(sum(ct.values()), 1)
    return [prec, rec, f1(prec, rec)]


def lcs_len(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(t, p):
    if not t or not p:
        return [0.0, 0.0, 0.0]
    m = lcs_len(t, p)
    prec, rec = m / len(p), m / len(t)
    return [prec, rec, f1(prec, rec)]


def case(target, prediction, stem, note):
    t, p = tokens(target, stem), tokens(prediction, stem)
    return {"note": note, "stem": stem, "target": target, "prediction": prediction,
            "rouge1": rouge_n(t, p, 1), "rouge2": rouge_n(t, p, 2), "rougeL": rouge_l(t, p)}


HAND = [
    ("", "", "both empty"),
    ("the cat sat", "", "empty prediction"),
    ("", "the cat sat", "empty target"),
    ("!!! ... ???", "the cat", "target of punctuation only"),
    ("the cat", "--- ,,, ", "prediction of punctuation only"),
    ("The Cat SAT", "the cat sat", "case is ignored"),
    ("the cat sat on the mat", "the cat sat on the mat", "identical"),
    ("the cat sat on the mat", "mat the on sat cat the", "reversed"),
    ("the the the the", "the", "clipping: prediction count below target"),
    ("the", "the the the the", "clipping: prediction count above target"),
    ("a b a b a b", "b a b a", "repeated bigrams"),
    ("police killed the gunman", "police kill the gunman", "Lin's example, one word changed"),
    ("police killed the gunman", "the gunman kill police", "Lin's example, reordered"),
    ("state-of-the-art C++ compiler (GCC)", "state of the art c compiler gcc", "punctuation splits tokens"),
    ("don't stop", "don t stop", "apostrophe splits"),
    ("version 3.14 and 2,000 files", "version 3 14 and 2 000 files", "digits are tokens"),
    ("café naïve résumé", "caf na ve r sum", "accented letters are separators"),
    ("İstanbul", "i stanbul", "U+0130 lowercases to i + U+0307"),
    ("\u212aelvin", "kelvin", "U+212A KELVIN SIGN lowercases to k"),
    ("日本語のテキスト", "text", "CJK only: no tokens"),
    ("emoji 🙂 here", "emoji here", "emoji is a separator"),
    ("tab\tseparated\nlines\r\nhere", "tab separated lines here", "whitespace kinds"),
    ("running runs ran runner", "run run ran run", "stemming conflates (stem cases)"),
    ("dies flies lies skies", "die fli lie sky", "NLTK 4-letter ies rule"),
    ("dying lying tying news", "die lie tie news", "NLTK irregular forms"),
    ("generously happily relational conditional", "generous happi relate condition", "step 2 rules"),
    ("abc abcd abcde", "abc abcd abcde", "stemming only above 3 characters"),
    ("caresses ponies ties caress cats", "caress poni ti caress cat", "step 1a"),
    ("feed agreed plastered bled motoring sing", "feed agree plaster bled motor sing", "step 1b"),
    ("conflated troubled sized hopping tanned falling hissing fizzed failing filing",
     "conflate trouble size hop tan fall hiss fizz fail file", "step 1b follow-ups"),
    ("triplicate formative formalize electriciti electrical hopeful goodness",
     "triplic form formal electric electric hope good", "step 3"),
    ("revival allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment dependent adoption",
     "reviv allow infer airlin gyroscop adjust defens irrit replac adjust depend adopt", "step 4"),
    ("probate rate cease controll roll", "probat rate ceas control roll", "step 5"),
    ("archaeology theology geology", "archaeolog theolog geolog", "logi rule"),
    ("a", "a", "single letter"),
    ("x", "y", "single letter, different"),
    ("one two", "two one", "two tokens swapped: no bigram"),
    ("1 2 3 4 5 6 7 8 9 10", "10 9 8 7 6 5 4 3 2 1", "numbers reversed"),
    ("a " * 50, "a " * 30, "long run of one token"),
    ("supercalifragilisticexpialidocious", "supercalifragilisticexpialidocious", "long token"),
    ("Python 3 module for working with MIDI messages and ports",
     "Python module for MIDI messages", "a synopsis and a short paraphrase"),
]


def perturb(words, rng, pool):
    w = list(words)
    ops = rng.randint(1, 3)
    for _ in range(ops):
        op = rng.choice(["drop", "swap", "dup", "replace", "case", "inflect", "insert", "shuffle"])
        if not w:
            w.append(rng.choice(pool))
            continue
        i = rng.randrange(len(w))
        if op == "drop":
            del w[i]
        elif op == "swap" and len(w) > 1:
            j = min(i + 1, len(w) - 1)
            w[i], w[j] = w[j], w[i]
        elif op == "dup":
            w.insert(i, w[i])
        elif op == "replace":
            w[i] = rng.choice(pool)
        elif op == "case":
            w[i] = w[i].upper() if rng.random() < 0.5 else w[i].capitalize()
        elif op == "inflect":
            w[i] = w[i] + rng.choice(["s", "ing", "ed", "ly", "ness", "ation", "ies"])
        elif op == "insert":
            w.insert(i, rng.choice(pool))
        elif op == "shuffle":
            rng.shuffle(w)
    return " ".join(w)


SUFFIXES = ["ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization",
            "ation", "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli",
            "logi", "icate", "ative", "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic",
            "able", "ible", "ant", "ement", "ment", "ent", "sion", "tion", "ou", "ism", "ate", "iti", "ous",
            "ive", "ize", "e", "ll", "sses", "ies", "ss", "s", "ied", "eed", "ed", "ing", "y", "at", "bl", "iz"]


def write_atomic(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def porter_cases(rng):
    words = set()
    for name in ("debian/debian-sum.test.jsonl", "debian/debian-section.test.jsonl", "gsm8k/test.jsonl"):
        for line in open(os.path.join(SHARED, "data", name), encoding="utf-8"):
            for v in json.loads(line).values():
                for s in (v if isinstance(v, list) else [v]):
                    if isinstance(s, str):
                        words.update(w for w in re.sub(r"[^a-z0-9]+", " ", s.lower()).split() if len(w) > 3)
    real = rng.sample(sorted(words), 3000)
    synth = set()
    while len(synth) < 2000:
        w = "".join(rng.choice("aeiouybcdlstwxz0") for _ in range(rng.randint(0, 6)))
        for _ in range(rng.randint(1, 3)):
            w += rng.choice(SUFFIXES)
        synth.add(w)
    irregular = ["sky", "skies", "dying", "lying", "tying", "news", "innings", "inning", "outings", "outing",
                 "cannings", "canning", "howe", "proceed", "exceed", "succeed", "yyyyyy", "ay", "by", "is"]
    return ["%s\t%s" % (w, STEMMER.stem(w)) for w in irregular + sorted(real) + sorted(synth)]


def main():
    rng = random.Random(20240707)
    rows = []
    for target, prediction, note in HAND:
        for stem in (False, True):
            rows.append(case(target, prediction, stem, "hand: " + note))
    path = os.path.join(SHARED, "data", "debian", "debian-sum.test.jsonl")
    items = [json.loads(line) for line in open(path, encoding="utf-8")]
    synopses = [d["target"] for d in items]
    pool = sorted({w for s in synopses for w in s.split()})
    picks = rng.sample(range(len(items)), 170)
    for k, i in enumerate(picks):
        syn = synopses[i]
        if k < 100:
            pred, note = perturb(syn.split(), rng, pool), "debian-sum: synopsis vs perturbed synopsis"
        elif k < 160:
            pred, note = synopses[rng.randrange(len(synopses))], "debian-sum: synopsis vs another synopsis"
        else:
            pred, note = items[i]["prompt"], "debian-sum: synopsis vs its long description"
        for stem in (False, True):
            rows.append(case(syn, pred, stem, note + " (" + items[i]["id"] + ")"))
    write_atomic(OUT, [json.dumps(r, ensure_ascii=False) for r in rows])
    print("%s: %d cases" % (OUT, len(rows)))
    stems = porter_cases(random.Random(1980))
    write_atomic(PORTER_OUT, stems)
    print("%s: %d words" % (PORTER_OUT, len(stems)))


if __name__ == "__main__":
    main()
