#!/usr/bin/env python3
"""Check that a uniform BERT extraction loads in `transformers` and computes what Sculpt computes
(a manual check, not a CI test).

1. `sculpt extract RUN --subnet SUBNET --out DIR --json`: Sculpt's own check of the extracted
   model against the super-network with the sub-network active (max |difference| of the logits);
2. `sculpt embed DIR --hidden`: Sculpt's last_hidden_state and sentence embeddings of the
   extracted model on real texts;
3. `BertModel.from_pretrained(DIR)` in transformers on the same texts (the HF tokenizer saved in
   DIR): last_hidden_state at the unmasked positions and the masked-mean, L2-normalised
   embedding compared with Sculpt's (must be <= 1e-4); the full run's model gives the scale of a
   real difference (the comparison must not be vacuous).

    /root/venv-torch/bin/python scripts/extract_hf_check.py [--run /work/runs/topics-full] \
        [--subnet '{"layers": 4, "heads": 12, "ffn": 768}'] [--sculpt .build/release/sculpt]
"""
import argparse, json, os, subprocess, sys, tempfile
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertModel

ap = argparse.ArgumentParser()
ap.add_argument("--run", default="/work/runs/topics-full")
ap.add_argument("--subnet", default='{"layers": 4, "heads": 12, "ffn": 768}')
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--sculpt", default=os.path.join(repo, ".build", "release", "sculpt"))
ap.add_argument("--texts", default=os.path.join(repo, "..", "shared", "datasets", "fortunes", "topics.test.jsonl"))
ap.add_argument("--count", type=int, default=64)
ap.add_argument("--max-length", type=int, default=128)
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="sculpt-hf-extract-")
out = os.path.join(work, "extracted")
rep = json.loads(subprocess.run([args.sculpt, "extract", args.run, "--subnet", args.subnet, "--out", out, "--json"],
                                check=True, capture_output=True, text=True).stdout)
cfg = json.load(open(os.path.join(out, "config.json")))
assert "sculpt_num_heads" not in cfg and "sculpt_intermediate_sizes" not in cfg, "not a standard HF config"

texts = [json.loads(l)["text"] for l in open(args.texts, encoding="utf-8") if l.strip()][: args.count]
texts_file = os.path.join(work, "texts.jsonl")
with open(texts_file, "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps({"text": t}) + "\n")
emb_file = os.path.join(work, "sculpt.safetensors")
subprocess.run([args.sculpt, "embed", out, "--texts-file", texts_file, "--hidden", "--max-length", str(args.max_length),
                "--out", emb_file], check=True, capture_output=True)
ref = load_file(emb_file)

def hf_outputs(model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    return h, enc["attention_mask"], e

h, mask, e = hf_outputs(out)
assert cfg["num_hidden_layers"] == json.loads(args.subnet)["layers"]
n = min(h.shape[1], ref["last_hidden_state"].shape[1])
assert torch.equal(mask[:, :n].float(), ref["attention_mask"][:, :n].float()), "tokenization differs"
keep = mask[:, :n].bool()
hidden_diff = (h[:, :n][keep] - ref["last_hidden_state"][:, :n][keep]).abs().max().item()
emb_diff = (e - ref["sentence_embedding"]).abs().max().item()
_, _, e_full = hf_outputs(os.path.join(args.run, "final"))
effect = (e_full - e).abs().max().item()
print(f"extracted {rep['subnet']} from {args.run}: {cfg['num_hidden_layers']} layers, intermediate_size {cfg['intermediate_size']}, "
      f"{rep['params']} parameters")
print(f"sculpt extract check (extracted vs super-network, {rep['checked_examples']} examples): max|diff| = {rep['max_abs_difference']:.3g}")
print(f"transformers vs sculpt embed on {len(texts)} texts: last_hidden_state max|diff| = {hidden_diff:.3g}, "
      f"sentence embedding max|diff| = {emb_diff:.3g}; full model vs extracted embedding {effect:.3g}")
ok = rep["max_abs_difference"] <= 1e-4 and hidden_diff <= 1e-4 and emb_diff <= 1e-4 and effect > 1e-2
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
