#!/usr/bin/env python3
"""Hand-computed values of tests/compat/test_compat_loss.c, from the formulas of
src/compat/compat_loss.h written out with nothing but math (float64). Run once; the
printed constants are pasted into the test. Not run by the test suite."""
import math

def lse(v): m = max(v); return m + math.log(sum(math.exp(x - m) for x in v))
def logsoftmax(v, T=1.0): s = [x / T for x in v]; l = lse(s); return [x - l for x in s]
def softmax(v, T=1.0): return [math.exp(x) for x in logsoftmax(v, T)]
def kl(p, q): return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)
def argmax(v): return max(range(len(v)), key=lambda i: (v[i], -i))

def topk_kl(zt, zs, K, T):
    """Bucketed KL: a = sum_K p log(p/q) + r log(r/q_rest)."""
    p, q = softmax(zt, T), softmax(zs, T)
    r = 1 - sum(p[j] for j in K); qr = 1 - sum(q[j] for j in K)
    a = sum(p[j] * math.log(p[j] / q[j]) for j in K) + r * math.log(r / qr)
    pt = [p[j] if j in K else r * q[j] / qr for j in range(len(zs))]
    return a, [(q[j] - pt[j]) / T for j in range(len(zs))]

def elodi(zs, zt, K, margin, pw):
    ls, lt = logsoftmax(zs), logsoftmax(zt)
    D = {j: ls[j] - lt[j] for j in K}
    kd = sum(abs(D[j]) ** pw for j in K if abs(D[j]) > margin) / len(K)
    g = {j: ((2 * D[j]) if pw == 2 else math.copysign(1, D[j])) / len(K) if abs(D[j]) > margin else 0.0 for j in K}
    q1 = softmax(zs); gs = sum(g.values())
    dz = [g.get(i, 0.0) - q1[i] * gs for i in range(len(zs))]
    return kd, dz, D

def fmt(v): return ", ".join("%.12g" % x for x in v)

T = 2.0
z, z1, z2 = [2.0, 1.0, 0.0, -1.0], [0.5, 2.5, -0.5, 0.0], [3.0, -0.5, 1.0, -1.0]
q = softmax(z, T); p1 = softmax(z1, T); p2 = softmax(z2, T); q1 = softmax(z)
a1, a2 = kl(p1, q), kl(p2, q)
print("/* token level, V = 4, T = 2 */")
print("#define H_A1 %.15g /* KL(softmax(z1/2) || softmax(z/2)) */" % a1)
print("#define H_A2 %.15g /* KL(softmax(z2/2) || softmax(z/2)) */" % a2)
for y in range(4): print("/* -log q1(%d) */ %.15g" % (y, -logsoftmax(z)[y]))
print("logq1", fmt(logsoftmax(z)), " logp1_1", fmt(logsoftmax(z1)))
# combination: student-wrong, y = 0 (student right -> a2), answer, ce 0.3, kd 0.7
L = 0.3 * -logsoftmax(z)[0] + 0.7 * a2
dz = [0.3 * (q1[i] - (i == 0)) + 0.7 * (q[i] - p2[i]) / T for i in range(4)]
print("combo loss %.15g dz {%s}" % (L, fmt(dz)))
for margin in (1.0,):
    for pw in (1, 2):
        kd, dz, D = elodi(z, z1, range(4), margin, pw)
        print("elodi exact margin %g p %d: kd %.15g dz {%s} D {%s}" % (margin, pw, kd, fmt(dz), fmt(D.values())))
        kd, dz, D = elodi(z, z1, [1, 0], margin, pw)
        print("elodi top2 margin %g p %d: kd %.15g dz {%s} D {%s}" % (margin, pw, kd, fmt(dz), fmt(D.values())))
a, g = topk_kl(z1, z, [1, 0], T); print("topk a1 K={1,0}: %.15g dz {%s}" % (a, fmt(g)))
a, g = topk_kl(z2, z, [0, 2], T); print("topk a2 K={0,2}: %.15g dz {%s}" % (a, fmt(g)))
print("r1 %.15g qrest %.15g" % (1 - p1[1] - p1[0], 1 - q[1] - q[0]))

print("\n/* choice level, T = 2, margin 0.6, p 2; ce_scale 0.4, kd_scale 0.6 */")
cases = [([-3.0, -2.0], [-1.5, -2.5], [-2.2, -1.0], [0, 1]),
         ([-4.0, -2.5, -3.0], [-3.5, -3.2, -1.0], [-2.0, -2.6, -4.0], [0, 2]),
         ([-5.0, -6.5, -4.2, -7.0], [-4.8, -5.0, -6.0, -5.5], [-6.0, -4.0, -4.5, -5.0], [0, 1])]
methods = ["STUDENT_WRONG", "OLD_CORRECT", "NONE", "TOKEN_LIKELIHOOD", "SEQ_LIKELIHOOD", "FOCAL", "ELODI"]
cs, ks, margin, pw = 0.4, 0.6, 0.6, 2
for ci, (ll, l1, l2, labels) in enumerate(cases):
    n = len(ll)
    q = softmax(ll, T); P1 = softmax(l1, T); P2 = softmax(l2, T)
    A1, A2 = kl(P1, q), kl(P2, q)
    kd_el, dz_el, D = elodi(ll, l1, range(n), margin, pw)
    print("/* case %d: a1 %.10g a2 %.10g D {%s} */" % (ci, A1, A2, fmt(D.values())))
    for lab in labels:
        for m in methods:
            if m == "ELODI": kd, masked = kd_el, 0
            elif m == "FOCAL":
                masked = int(argmax(l1) == lab); kd = (1 + 5 * masked) * A1
            else:
                masked = {"STUDENT_WRONG": argmax(ll) != lab, "OLD_CORRECT": argmax(l1) == lab, "NONE": True,
                          "TOKEN_LIKELIHOOD": ll[lab] < l1[lab], "SEQ_LIKELIHOOD": ll[lab] < l1[lab]}[m]
                masked = int(masked); kd = A1 if masked else A2
            for ce in (0, 1):
                loss = ks * kd + (cs * -ll[lab] if ce else 0)
                print("    {%d, %d, COMPAT_%s, %d, %d, %.15g}," % (ci, lab, m, ce, masked, loss))
# dll of case 2 (n = 4), label 1, student-wrong, with ce
ll, l1, l2, _ = cases[2]; q = softmax(ll, T); P = softmax(l1, T)
m = int(argmax(ll) != 1); P = P if m else softmax(l2, T)
print("dll case2 label1 sw ce (m=%d): {%s}" % (m, fmt([ks * (q[i] - P[i]) / T - (cs if i == 1 else 0) for i in range(4)])))
kd, dz, D = elodi(ll, l1, range(4), margin, pw)
print("dll case2 elodi no ce: {%s}" % fmt([ks * x for x in dz]))

for ci in range(3):
    ll, l1, _, _ = cases[ci]
    kd, dz, D = elodi(ll, l1, range(len(ll)), margin, 1)
    print("choice case %d elodi p 1 margin 0.6: kd %.15g" % (ci, kd))

# token level table: method, y, seq_flag, answer, distill, ce_scale, kd_scale, teacher top-2?, masked, loss
print("\n/* token-level table */")
q = softmax(z, T); lq1 = logsoftmax(z); lp1 = logsoftmax(z1)
K1, K2 = [1, 0], [0, 2]   # top-2 of z1 and of z2
ta1, _ = topk_kl(z1, z, K1, T); ta2, _ = topk_kl(z2, z, K2, T)
print("/* a1 %.15g a2 %.15g top-2: a1 %.15g a2 %.15g */" % (a1, a2, ta1, ta2))
rows = []
for topk in (0, 1):
    A1, A2 = (ta1, ta2) if topk else (a1, a2)
    for y in (0, 1):
        for m, mask in (("STUDENT_WRONG", argmax(z) != y), ("OLD_CORRECT", argmax(z1) == y), ("NONE", True),
                        ("TOKEN_LIKELIHOOD", lq1[y] < lp1[y])):
            rows.append((m, y, 0, 0, 1, 1.0, 1.0, topk, int(mask), A1 if mask else A2))
        for sf in (0, 1):
            rows.append(("SEQ_LIKELIHOOD", y, sf, 0, 1, 1.0, 1.0, topk, sf, A1 if sf else A2))
        fm = int(argmax(z1) == y)
        rows.append(("FOCAL", y, 0, 0, 1, 1.0, 1.0, topk, fm, (0.5 + 2.0 * fm) * A1))
# CE only, and the combination
for y in range(4):
    rows.append(("STUDENT_WRONG", y, 0, 1, 0, 0.5, 0.7, 0, 0, 0.5 * -lq1[y]))
for m, mask in (("STUDENT_WRONG", argmax(z) != 0), ("NONE", True)):
    rows.append((m, 0, 0, 1, 1, 0.3, 0.7, 0, int(mask), 0.3 * -lq1[0] + 0.7 * (a1 if mask else a2)))
rows.append(("FOCAL", 1, 0, 1, 1, 0.3, 0.7, 0, 1, 0.3 * -lq1[1] + 0.7 * 2.5 * a1))
for r in rows: print("    {COMPAT_%s, %d, %d, %d, %d, %g, %g, %d, %d, %.15g}," % r)

# ---- sequence level (test_seq_hand_values): V = 3, one instance, ce_weight 0.5, kd_weight 1
# reference row ids [0, 2, 1] (mask 0 1 1), M1's output row ids [0, 1, 1, 0] (mask 0 1 1 1):
# loss = 0.5 * (CE of the 2 reference tokens) / 2 + 1 * mask * (CE of M1's 3 tokens) / 3
zr = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
zk = [[0.1, 0.2, 0.3], [-2.0, 1.0, 0.0], [0.7, 0.7, -0.4]]
def lse3(v):
    m = max(v); return m + math.log(sum(math.exp(x - m) for x in v))
ce_ref = lse3(zr[0]) - zr[0][2] + lse3(zr[1]) - zr[1][1]
ce_kd = lse3(zk[0]) - zk[0][1] + lse3(zk[1]) - zk[1][1] + lse3(zk[2]) - zk[2][0]
print("seq: ce_ref %.15g ce_kd %.15g loss(mask 0) %.15g loss(mask 1) %.15g" %
      (ce_ref, ce_kd, 0.5 * ce_ref / 2, 0.5 * ce_ref / 2 + ce_kd / 3))
