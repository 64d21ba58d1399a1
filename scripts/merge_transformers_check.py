#!/usr/bin/env python3
"""Check that transformers loads a `sculpt merge` output and computes what Sculpt computes
(a manual check, not a CI test).

Needs torch and transformers. Loads MERGED with `BertModel.from_pretrained` (no missing or
unexpected encoder keys allowed), runs it on a few texts and compares its last_hidden_state
with `sculpt embed MERGED --hidden`. With --base it also checks the merge changed the
output, so the comparison is not of two copies of the base.

    /root/venv-torch/bin/python scripts/merge_transformers_check.py MERGED \
        --sculpt .build/release/sculpt [--base ../shared/models/all-MiniLM-L6-v2]
"""
import argparse, os, subprocess, sys, tempfile
import torch
from safetensors.torch import load_file
from transformers import BertModel, BertTokenizerFast

ap = argparse.ArgumentParser()
ap.add_argument("merged")
ap.add_argument("--sculpt", required=True, help="the sculpt binary")
ap.add_argument("--base", help="the base model, to check the merge moved the output")
args = ap.parse_args()

texts = ["The quick brown fox jumps over the lazy dog.",
         "A computer once beat me at chess, but it was no match for me at kick boxing.",
         "Héllo Wörld! Ça va?",
         "Those who do not learn from history are doomed to repeat it."]
tmp = tempfile.mkdtemp(prefix="sculpt-merge-hf-")
texts_file = os.path.join(tmp, "texts.txt")
with open(texts_file, "w") as f:
    f.write("\n".join(texts) + "\n")
out = os.path.join(tmp, "sculpt.safetensors")
subprocess.run([args.sculpt, "embed", args.merged, "--texts-file", texts_file, "--hidden", "--out", out], check=True)
ref = load_file(out)

model, info = BertModel.from_pretrained(args.merged, output_loading_info=True)
model.eval()
# Per-task tensors (task_<i>.*) are not part of the encoder: transformers reports them as unexpected.
unexpected = [k for k in info["unexpected_keys"] if not k.startswith("task_")]
missing = info["missing_keys"]
tok = BertTokenizerFast.from_pretrained(args.merged)
enc = tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**enc).last_hidden_state
ids_equal = torch.equal(enc["attention_mask"].to(ref["attention_mask"].dtype), ref["attention_mask"])
diff = (hidden - ref["last_hidden_state"]).abs().max().item()
effect = None
if args.base:
    base = BertModel.from_pretrained(args.base).eval()
    with torch.no_grad():
        effect = (base(**enc).last_hidden_state - hidden).abs().max().item()
print(f"transformers loads {args.merged}: missing {missing or 'none'}, unexpected {unexpected or 'none'}")
print(f"last_hidden_state max|transformers - sculpt| = {diff:.3g} over {hidden.shape[0]} texts"
      + (f"; merge moved it from the base by {effect:.3g}" if effect is not None else ""))
ok = not missing and not unexpected and ids_equal and diff < 1e-4 and (effect is None or effect > 1e-2)
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
