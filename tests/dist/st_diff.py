#!/usr/bin/python3
"""st_diff.py A B [TOL]: max abs difference of the F32 tensors two safetensors files share
(same names and shapes required). Prints "max_abs_diff <x> over <n> values in <k> tensors";
exit 1 when a tensor is missing or the difference exceeds TOL (default: no limit)."""
import json, struct, sys
import numpy as np

def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        assert v['dtype'] == 'F32', (p, k, v['dtype'])
        s, e = v['data_offsets']
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').reshape(v['shape'])
    return out

a, b = load(sys.argv[1]), load(sys.argv[2])
tol = float(sys.argv[3]) if len(sys.argv) > 3 else float('inf')
if sorted(a) != sorted(b):
    print('# tensors differ:', sorted(set(a) ^ set(b)))
    sys.exit(1)
m, n = 0.0, 0
for k in a:
    if a[k].shape != b[k].shape:
        print('# shape of', k, a[k].shape, b[k].shape)
        sys.exit(1)
    d = np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))
    if d.size:
        m = max(m, float(d.max()))
    n += d.size
print('max_abs_diff %.3g over %d values in %d tensors' % (m, n, len(a)))
sys.exit(0 if m <= tol else 1)
