#!/usr/bin/env python3
"""Hand-computed values of the methods of issue 18 (ensemble, mixture, weighted, flip) in
tests/compat/test_compat_loss.c: the formulas of docs/compat.md written out with nothing
but math (float64). Run once; the printed constants are pasted into the test."""
import math

def lse(v): m = max(v); return m + math.log(sum(math.exp(x - m) for x in v))
def softmax(v, T=1.0): s = [x / T for x in v]; l = lse(s); return [math.exp(x - l) for x in s]
def kl(p, q): return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)
def fmt(v): return ", ".join("%.15g" % x for x in v)
def mix(ps, ws): return [sum(w * p[j] for p, w in zip(ps, ws)) for j in range(len(ps[0]))]

T = 2.0
z = [2.0, 1.0, 0.0, -1.0]; z1 = [0.5, 2.5, -0.5, 0.0]; z2a = [3.0, -0.5, 1.0, -1.0]; z2b = [1.0, 0.5, 2.0, -0.5]
q, q1 = softmax(z, T), softmax(z)
p1, pa, pb = softmax(z1, T), softmax(z2a, T), softmax(z2b, T)
ens = mix([pa, pb], [0.5, 0.5])
mx = mix([pa, pb, p1], [0.35, 0.35, 0.3])
print("/* token level, V = 4, T = 2, ce 0.3, kd 0.7 */")
def tok(name, y, teacher):
    L = 0.3 * -math.log(q1[y]) + 0.7 * kl(teacher, q)
    dz = [0.3 * (q1[i] - (i == y)) + 0.7 * (q[i] - teacher[i]) / T for i in range(4)]
    print("%s y %d: loss %.15g dz {%s}" % (name, y, L, fmt(dz)))
tok("ensemble (student right: the mean of 2)", 0, ens)
tok("ensemble (student wrong: M1)", 1, p1)
tok("mixture a 0.3", 1, mx)

print("/* choice level, n = 3, T = 2, ce 0.4, kd 0.6 */")
ll = [-4.0, -2.5, -3.0]; l1 = [-3.5, -3.2, -1.0]; l2a = [-2.0, -2.6, -4.0]; l2b = [-3.0, -2.0, -3.5]
Q = softmax(ll, T); P1 = softmax(l1, T); PA = softmax(l2a, T); PB = softmax(l2b, T)
def cho(name, label, teacher, w):
    L = 0.4 * -ll[label] + 0.6 * w * kl(teacher, Q) if teacher else 0.4 * -ll[label]
    d = [0.6 * w * (Q[i] - teacher[i]) / T if teacher else 0.0 for i in range(3)]
    d[label] -= 0.4
    print("%s label %d: loss %.15g dll {%s}" % (name, label, L, fmt(d)))
cho("ensemble (student right)", 1, mix([PA, PB], [0.5, 0.5]), 1)
cho("ensemble (student wrong)", 2, P1, 1)
cho("mixture a 0.2", 0, mix([PA, PB, P1], [0.4, 0.4, 0.2]), 1)
w = softmax(l1)[2]
print("weighted: w = softmax(ll1)[2] = %.15g" % w)
cho("weighted (student wrong)", 2, P1, w)
cho("weighted (student right: M2)", 1, PA, 1)
cho("flip (M2 wrong, M1 right)", 2, P1, 1)
cho("flip (M2 right)", 0, None, 1)
print("ensemble logits T log mean: {%s}" % fmt([T * math.log(x) for x in mix([PA, PB], [0.5, 0.5])]))
