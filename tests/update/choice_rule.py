#!/usr/bin/env python3
"""Checks a run's choice among a method's candidates (update_epochs.c) against an independent
computation from the validation prediction files: the lowest validation NFR among the
candidates within 0.5 points of M2's validation accuracy, the first when none is; the
chosen candidate's files are the method's adapter. Used by tests/update/mixw.sh and cew.sh.

usage: choice_rule.py RUN METHOD EPOCHS AS WS SEEDS
  EPOCHS, AS, WS: the --compat-epochs, --mixture-weights, --ce-weights lists ("-": none);
  candidates in update's order: a outer, then W, the count inner."""
import filecmp, json, sys

d, m = sys.argv[1], sys.argv[2]
lst = lambda s: None if s == "-" else [float(x) for x in s.split(",")]
eps, As, Ws, seeds = lst(sys.argv[3]) or [1.0], lst(sys.argv[4]), lst(sys.argv[5]), int(sys.argv[6])

def rd(f): return {r["id"]: bool(r["correct"]) for r in map(json.loads, open(d + "/preds/" + f))}
def stats(old, new):
    o, n = rd(old), rd(new); assert o.keys() == n.keys()
    return sum(n.values()) / len(n), sum(o[i] and not n[i] for i in o) / len(n)
def name(k, e, a, w):  # -eE with a count list or no other list; -aA, -wW with theirs
    s = "%s-s%d" % (m, k)
    if len(eps) > 1 or (As is None and Ws is None): s += "-e%g" % e
    if As is not None: s += "-a%g" % a
    if Ws is not None: s += "-w%g" % w
    return s

cands = [(e, a, w) for a in (As or [None]) for w in (Ws or [None]) for e in eps]
for k in range(1, seeds + 1):
    sw = json.load(open(d + "/preds/%s-s%d.epochs.json" % (m, k)))
    m2a, m2n = stats("old.val.jsonl", "new-s%d.val.jsonl" % k)
    assert len(sw["points"]) == len(cands), sw["points"]
    best = None
    for c, p in zip(cands, sw["points"]):
        va, vn = stats("old.val.jsonl", name(k, *c) + ".val.jsonl")
        assert p["epochs"] == c[0] and p.get("mixture_weight") == c[1] and p.get("ce_weight") == c[2], (p, c)
        assert abs(p["val_acc"] - va) < 1e-12 and abs(p["val_nfr"] - vn) < 1e-12, (p, va, vn)
        if va >= m2a - 0.005 - 1e-12 and (best is None or vn < best[1] - 1e-12): best = (c, vn)
    want = best[0] if best else cands[0]
    got = (sw["chosen_epochs"], sw.get("chosen_mixture_weight"), sw.get("chosen_ce_weight"))
    print("# seed %d: chosen %s (independent %s); M2 val acc %.3f, points %s" % (k, got, want, m2a,
          [(p["epochs"], p.get("mixture_weight"), p.get("ce_weight"), round(p["val_acc"], 3), round(p["val_nfr"], 3)) for p in sw["points"]]))
    assert got == want and sw["seed"] == k, (got, want)
    for f in ("adapter_model.safetensors", "adapter_config.json", "training.json"):
        assert filecmp.cmp("%s/adapters/%s-s%d/%s" % (d, m, k, f), "%s/adapters/%s/%s" % (d, name(k, *want), f), shallow=False), f
