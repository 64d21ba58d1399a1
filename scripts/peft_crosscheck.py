#!/usr/bin/env python3
"""Cross-check Sculpt's LoRA adapters against PEFT (a manual check, not a CI test).

Needs torch, transformers and peft. Runs the Swift fixture test, which saves a LoRA adapter
for all-MiniLM-L6-v2 in PEFT's layout plus Sculpt's outputs on random tokens, then loads the
adapter with `PeftModel.from_pretrained` onto the HF BertModel and compares.

    /root/venv-torch/bin/python scripts/peft_crosscheck.py [--shared ../shared]
"""
import argparse, os, subprocess, sys, tempfile
import torch
from safetensors.torch import load_file
from transformers import BertModel
from peft import PeftModel

ap = argparse.ArgumentParser()
ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
ap.add_argument("--fixture", help="reuse an existing fixture directory instead of running swift test")
args = ap.parse_args()
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fixture = args.fixture or tempfile.mkdtemp(prefix="sculpt-peft-")
if not args.fixture:
    env = dict(os.environ, SCULPT_PEFT_FIXTURE=fixture, SCULPT_SHARED=os.path.abspath(args.shared))
    subprocess.run(["swift", "test", "--filter", "LoRAAdapterTests/testWritePEFTCrossCheckFixture"], cwd=repo, env=env, check=True)

base = BertModel.from_pretrained(os.path.join(args.shared, "models", "all-MiniLM-L6-v2"), add_pooling_layer=False)
model = PeftModel.from_pretrained(base, os.path.join(fixture, "adapter"))
model.eval()
ref = load_file(os.path.join(fixture, "sculpt_outputs.safetensors"))
with torch.no_grad():
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).last_hidden_state
    diff = (out - ref["last_hidden_state"]).abs().max().item()
    merged = model.merge_and_unload()
    mout = merged(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).last_hidden_state
    mdiff = (mout - ref["merged_last_hidden_state"]).abs().max().item()
    # The adapter must change the output, or the comparison proves nothing.
    plain = BertModel.from_pretrained(os.path.join(args.shared, "models", "all-MiniLM-L6-v2"), add_pooling_layer=False).eval()
    effect = (plain(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).last_hidden_state - out).abs().max().item()
print(f"PEFT vs Sculpt last_hidden_state max|diff| = {diff:.3g} (merged: {mdiff:.3g}); adapter effect {effect:.3g}")
ok = diff < 1e-4 and mdiff < 1e-4 and effect > 1e-2
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
