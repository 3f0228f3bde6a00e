#!/usr/bin/env python3
"""Per-token log-probabilities from the PyTorch float64 reference, for comparing with
`muscle score`: score_ref.py MODEL ID ID ... -> JSON {"logprobs": [null, ...]}.
MODEL is read by tools/ref/llama_ref.py (llama2.c file, HF folder or GGUF), with the
rotary layout of its format (an HF folder: half-split, as transformers runs it)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

cfg, P = llama_ref.load_any(sys.argv[1])
ids = [int(x) for x in sys.argv[2:]]
lp = llama_ref.log_probs(cfg, P, ids)
print(json.dumps({"logprobs": [None] + llama_ref.token_logprobs(lp, ids)}))
