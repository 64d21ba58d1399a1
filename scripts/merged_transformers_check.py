#!/usr/bin/env python3
"""Load a `sculpt merge` output dir with transformers and compare it with `sculpt embed`
(a manual check, not a CI test; needs torch + transformers).

For the texts (default: the first 32 of fortunes/topics.test and of fortunes/everyday.test):
  1. `sculpt tokenize` ids must equal the merged dir's tokenizer as transformers loads it;
  2. `transformers.BertModel.from_pretrained(MERGED)` must load every encoder weight
     (no missing keys);
  3. its last_hidden_state (at unmasked positions) and masked-mean, L2-normalised sentence
     embedding must match `sculpt embed MERGED --hidden` within --tolerance (default 1e-4);
  4. the merged model must differ from the base (--base) by more than 1e-3 in the sentence
     embeddings, or the comparison proves nothing.

    /root/venv-torch/bin/python scripts/merged_transformers_check.py MERGED_DIR \
        [--sculpt .build/release/sculpt] [--base ../shared/models/all-MiniLM-L6-v2]
"""
import argparse, json, os, subprocess, sys, tempfile
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertModel
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()  # the pooler weights the encoder does not use are expected

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = os.environ.get("SCULPT_SHARED", os.path.join(os.path.dirname(repo), "shared"))
ap = argparse.ArgumentParser()
ap.add_argument("merged")
ap.add_argument("--sculpt", default=os.path.join(repo, ".build/release/sculpt"))
ap.add_argument("--base", default=os.path.join(shared, "models/all-MiniLM-L6-v2"))
ap.add_argument("--texts", nargs="*", default=[os.path.join(shared, "datasets/fortunes/topics.test.jsonl"),
                                               os.path.join(shared, "datasets/fortunes/everyday.test.jsonl")])
ap.add_argument("--per-file", type=int, default=32)
ap.add_argument("--max-length", type=int, default=128)
ap.add_argument("--tolerance", type=float, default=1e-4)
args = ap.parse_args()

texts = []
for path in args.texts:
    with open(path) as f:
        texts += [json.loads(line)["text"] for line in f if line.strip()][:args.per_file]
work = tempfile.mkdtemp(prefix="sculpt-merged-check-")
texts_file = os.path.join(work, "texts.jsonl")
with open(texts_file, "w") as f:
    for t in texts: f.write(json.dumps({"text": t}) + "\n")

def sculpt(*a):
    return subprocess.run([args.sculpt, *a], check=True, capture_output=True, text=True).stdout

# 1. Tokenization.
ids = [json.loads(l)["input_ids"] for l in sculpt("tokenize", args.merged, "--texts-file", texts_file,
                                                  "--max-length", str(args.max_length), "--json").splitlines()]
tok = AutoTokenizer.from_pretrained(args.merged)
hf_ids = [tok(t, truncation=True, max_length=args.max_length)["input_ids"] for t in texts]
bad_tok = sum(a != b for a, b in zip(ids, hf_ids))
if len(ids) != len(texts) or bad_tok:
    sys.exit(f"tokenization differs on {bad_tok} of {len(texts)} texts")

# 2-3. Encoder outputs: transformers on Sculpt's ids vs `sculpt embed`.
out_file = os.path.join(work, "sculpt.safetensors")
sculpt("embed", args.merged, "--texts-file", texts_file, "--max-length", str(args.max_length),
       "--hidden", "--out", out_file)
ref = load_file(out_file)
mask = ref["attention_mask"].to(torch.int64)
L = mask.shape[1]
input_ids = torch.tensor([row + [tok.pad_token_id] * (L - len(row)) for row in ids])
assert torch.equal(mask, (torch.arange(L)[None, :] < torch.tensor([len(r) for r in ids])[:, None]).to(torch.int64))

def encode(model_dir):
    model, info = BertModel.from_pretrained(model_dir, add_pooling_layer=False, output_loading_info=True)
    if info["missing_keys"]:
        sys.exit(f"{model_dir}: transformers found no weights for {info['missing_keys']}")
    model.eval()
    with torch.no_grad():
        h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    m = mask[..., None].to(h.dtype)
    e = (h * m).sum(1) / m.sum(1)
    return h, e / e.norm(dim=1, keepdim=True)

h, e = encode(args.merged)
m = mask[..., None].bool()
hidden_diff = (h - ref["last_hidden_state"]).abs().masked_select(m).max().item()
emb_diff = (e - ref["sentence_embedding"]).abs().max().item()
# 4. The merge must have changed the encoder.
_, e_base = encode(args.base)
effect = (e - e_base).abs().max().item()

print(f"{len(texts)} texts, {int(mask.sum())} tokens: transformers vs sculpt embed max|diff| "
      f"last_hidden_state {hidden_diff:.3g}, sentence_embedding {emb_diff:.3g}; merged vs base embedding max|diff| {effect:.3g}")
ok = hidden_diff <= args.tolerance and emb_diff <= args.tolerance and effect > 1e-3
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
