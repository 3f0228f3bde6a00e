#!/usr/bin/python3
"""Data for the embedded demo (called by demo/build.sh; Debian's python3, python3-sentencepiece).

  prepare.py data SHARED_DEBIAN OUT_DATA_DIR   task subsets -> demo/data/*.jsonl
  prepare.py corpus SHARED_DEBIAN WORK_DIR     pretraining corpora -> WORK/corpus-{v1,v2}.txt
  prepare.py tokenizer WORK_DIR                SentencePiece BPE, 512 pieces -> WORK/tok/tokenizer.model

Everything is seeded and sorted: the same inputs give the same files.
"""
import json, os, random, sys

# subset sizes (see demo/README.md for the timings they give)
SIZES = {"section": (1000, 500), "sum": (500, 200)}   # task: (train, test)
SEED = 20260101


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def subset(rows, n, seed):
    idx = sorted(random.Random(seed).sample(range(len(rows)), n))   # file order kept
    return [rows[i] for i in idx]


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def text_of(r):
    return (r.get("context") or r.get("prompt")).strip()


def cmd_data(shared, out):
    os.makedirs(out, exist_ok=True)
    for task, stem in (("section", "debian-section"), ("sum", "debian-sum")):
        ntrain, ntest = SIZES[task]
        train = subset(read(f"{shared}/{stem}.train.jsonl"), ntrain, SEED + 1)
        test = subset(read(f"{shared}/{stem}.test.jsonl"), ntest, SEED + 2)
        write_jsonl(f"{out}/{task}.train.jsonl", train)
        write_jsonl(f"{out}/{task}.test.jsonl", test)
        print(f"{task}: train {len(train)}, test {len(test)}")


def cmd_corpus(shared, work):
    """Long descriptions from the *train* splits of both sets, de-duplicated, minus every
    description of the shared *test* and *validation* splits (a superset of the shipped test
    sets). v2 reads all of them; v1 a seeded half."""
    os.makedirs(work, exist_ok=True)
    held = set()
    for stem in ("debian-section", "debian-sum"):
        for split in ("test", "validation"):
            held |= {text_of(r) for r in read(f"{shared}/{stem}.{split}.jsonl")}
    seen, docs = set(), []
    for stem in ("debian-section", "debian-sum"):
        for r in read(f"{shared}/{stem}.train.jsonl"):
            t = text_of(r)
            if t and t not in seen and t not in held:
                seen.add(t); docs.append(t)
    dropped = len({text_of(r) for stem in ("debian-section", "debian-sum")
                   for r in read(f"{shared}/{stem}.train.jsonl")} & held)
    random.Random(SEED).shuffle(docs)
    half = sorted(random.Random(SEED + 3).sample(range(len(docs)), len(docs) // 2))
    v1 = [docs[i] for i in half]
    for name, ds in (("corpus-v2.txt", docs), ("corpus-v1.txt", v1)):
        with open(f"{work}/{name}", "w", encoding="utf-8") as f:
            f.write("\n\n".join(ds) + "\n")
    print(f"corpus: {len(docs)} descriptions ({sum(map(len, docs))} chars) for v2, "
          f"{len(v1)} ({sum(map(len, v1))} chars) for v1; {dropped} train descriptions "
          f"left out because a test/validation record has them")


def cmd_tokenizer(work):
    import sentencepiece as spm
    os.makedirs(f"{work}/tok", exist_ok=True)
    lines = f"{work}/tok/lines.txt"
    with open(f"{work}/corpus-v2.txt", encoding="utf-8") as f, open(lines, "w", encoding="utf-8") as g:
        for l in f:
            if l.strip():
                g.write(l)
    # llama2.c's recipe for tok512 (train_vocab in tinystories.py)
    spm.SentencePieceTrainer.train(
        input=lines, model_prefix=f"{work}/tok/tokenizer", model_type="bpe", vocab_size=512,
        self_test_sample_size=0, input_format="text", character_coverage=1.0, num_threads=1,
        split_digits=True, allow_whitespace_only_pieces=True, byte_fallback=True,
        unk_surface=r" \342\201\207 ", normalization_rule_name="identity",
        max_sentence_length=16384, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=f"{work}/tok/tokenizer.model")
    print(f"tokenizer: {sp.get_piece_size()} pieces")


if __name__ == "__main__":
    c = sys.argv[1:]
    {"data": lambda: cmd_data(c[1], c[2]), "corpus": lambda: cmd_corpus(c[1], c[2]),
     "tokenizer": lambda: cmd_tokenizer(c[1])}[c[0]]()
