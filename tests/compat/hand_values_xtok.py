#!/usr/bin/env python3
"""Hand values of the cross-tokenizer losses (src/compat/compat_xtok.h), float64, written
out from the header's formulas; tests/compat/test_compat_xtok.c pastes them. Run once:
python3 tests/compat/hand_values_xtok.py"""
import math

def softmax(z, T):
    m = max(z); e = [math.exp((x - m) / T) for x in z]; s = sum(e); return [x / s for x in e]

# 1. ULD: teacher of 5 pieces, student of 3 (padding with zeros to 5), T = 2
zt = [1.0, -0.5, 2.0, 0.3, -1.2]
zs = [3.5, -1.0, 0.0]
T = 2.0
p = sorted(softmax(zt, T), reverse=True)
q = softmax(zs, T)
qs = sorted(q, reverse=True) + [0.0, 0.0]
uld = sum(abs(a - b) for a, b in zip(qs, p))
print("uld_5_3 = %.17g" % uld)
# gradient: g_j = sign(q_j - p_(rank j)); dz_j = q_j (g_j - sum q g) / T
order = sorted(range(3), key=lambda j: (-q[j], j))
g = [0.0] * 3
for r, j in enumerate(order):
    g[j] = 1.0 if q[j] > p[r] else -1.0 if q[j] < p[r] else 0.0
gq = sum(q[j] * g[j] for j in range(3))
print("uld_5_3_dz = {%s}" % ", ".join("%.17g" % (q[j] * (g[j] - gq) / T) for j in range(3)))
# student larger than teacher: teacher 2, student 4
zt2 = [0.5, -0.5]; zs2 = [0.0, 0.4, -0.3, 1.0]
p2 = sorted(softmax(zt2, T), reverse=True) + [0.0, 0.0]
q2 = sorted(softmax(zs2, T), reverse=True)
print("uld_2_4 = %.17g" % sum(abs(a - b) for a, b in zip(q2, p2)))

# 2. exact mapping: teacher of 5 pieces, map t -> s = {0:1, 1:-1, 2:0, 3:1, 4:-1} onto a student of 3
smap = [1, -1, 0, 1, -1]
pt1 = softmax(zt, 1.0)
cover = sum(pt1[t] for t in range(5) if smap[t] >= 0)
print("cover = %.17g" % cover)
ptT = softmax(zt, T)
mass = sum(ptT[t] for t in range(5) if smap[t] >= 0)
pt = [0.0] * 3
for t in range(5):
    if smap[t] >= 0: pt[smap[t]] += ptT[t] / mass
kl = sum(pt[s] * (math.log(pt[s]) - math.log(q[s])) for s in range(3) if pt[s] > 0)
print("mapped_kl = %.17g" % kl)
print("mapped_kl_dz = {%s}" % ", ".join("%.17g" % ((q[s] - pt[s]) / T) for s in range(3)))

# 3. span masks (compat_xtok.h "Spans"): student BOS "abc" "de" "fghi" (ids 0 1 2 3),
# M1 BOS "abcde" "fghi" (ids 0 1 2); span A = student positions 0, 1 / M1 position 0,
# span B = student position 2 / M1 position 1
zs_rows = [[0.1, 2.0, 0.5, -1.0], [0.3, 0.2, 1.5, 1.7], [-0.5, 0.0, 0.4, 2.2]]; ys = [1, 2, 3]
zt_rows = [[0.0, 1.2, 0.9], [0.2, 1.0, 0.8]]; yt = [1, 2]
def side(rows, ys):
    wrong = any(max(range(len(z)), key=lambda v: z[v]) != y for z, y in zip(rows, ys))
    return wrong, sum(math.log(softmax(z, 1.0)[y]) for z, y in zip(rows, ys))
for name, s_, t_ in (("A", side(zs_rows[0:2], ys[0:2]), side(zt_rows[0:1], yt[0:1])),
                     ("B", side(zs_rows[2:3], ys[2:3]), side(zt_rows[1:2], yt[1:2]))):
    print("span %s: student wrong %d ll %.17g; M1 wrong %d ll %.17g" % (name, s_[0], s_[1], t_[0], t_[1]))
    print("  masks: student-wrong %d old-correct %d token-likelihood %d" % (s_[0], not t_[0], s_[1] < t_[1]))
# per position (the old definition, at the aligned position only): span A
print("per position at A: student-wrong %d token-likelihood %d" % (
    max(range(4), key=lambda v: zs_rows[0][v]) != 1, math.log(softmax(zs_rows[0], 1.0)[1]) < math.log(softmax(zt_rows[0], 1.0)[1])))
