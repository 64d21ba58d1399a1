#!/usr/bin/env python3
"""Cross-check a decoder LoRA run of Sculpt against PEFT (a manual check, not a CI test).

1. Loads the run's `final/` (a PEFT adapter) with `PeftModel.from_pretrained` onto the
   transformers model of the same base (the GGUF, dequantized to float32) — no missing or
   unexpected keys allowed — and compares its logits with `sculpt score RUN --out` on a few
   texts (bound: 5e-3).
2. With --peft-adapter (an adapter PEFT trained, e.g. by Benchmarks/decoder_sft_peft.py) and
   --test: PEFT's exact-match accuracy against `sculpt eval ADAPTER --metric exact-match`.

    ~/venv-torch/bin/python scripts/peft_decoder_check.py RUN "$(../shared/models/smollm2-135m-instruct/fetch.sh)" \
        --sculpt .build/release/sculpt [--peft-adapter DIR --test ../shared/datasets/chat/everyday.test.jsonl]
"""
import argparse, json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Benchmarks"))
import torch
from safetensors.torch import load_file
from peft import PeftModel
from decoder_sft_peft import load, examples, exact_match

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("model")
ap.add_argument("--sculpt", required=True)
ap.add_argument("--peft-adapter")
ap.add_argument("--test")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

texts = ["The capital of France is", "My internet is not working. What should I do?", "Once upon a time, a small robot"]
tmp = tempfile.mkdtemp(prefix="sculpt-peft-decoder-")
tf = os.path.join(tmp, "texts.txt")
open(tf, "w").write("\n".join(texts) + "\n")
out = os.path.join(tmp, "scores.safetensors")
subprocess.run([args.sculpt, "score", args.run, "--texts-file", tf, "--out", out, "--threads", str(args.threads)], check=True, capture_output=True)
ref = load_file(out)

base, tok = load(args.model, args.threads)
final = os.path.join(args.run, "final") if os.path.isdir(os.path.join(args.run, "final")) else args.run
model = PeftModel.from_pretrained(base, final)
model.eval()
worst = 0.0
with torch.no_grad():
    for i in range(len(texts)):
        ids = ref[f"text{i}.input_ids"].long().unsqueeze(0)
        logits = model(input_ids=ids).logits[0, -1]
        d = (logits - ref[f"text{i}.last_logits"]).abs().max().item()
        worst = max(worst, d)
        print(f"text {i}: {ids.shape[1]} tokens, max |logit difference| {d:.2e}")
print(json.dumps({"adapter_logits_max_abs_diff": worst, "within_5e-3": worst <= 5e-3}))

if args.peft_adapter and args.test:
    base, tok = load(args.model, args.threads)
    peft_model = PeftModel.from_pretrained(base, args.peft_adapter)
    rows = examples(args.test, tok, 10 ** 9)[0]
    em, _ = exact_match(peft_model, tok, rows)
    s = subprocess.run([args.sculpt, "eval", args.peft_adapter, "--data", args.test, "--metric", "exact-match", "--json", "--threads", str(args.threads)],
                       check=True, capture_output=True, text=True).stdout
    sem = json.loads(s.strip().splitlines()[-1])["exact_match"]
    print(json.dumps({"peft_exact_match": em, "sculpt_exact_match_of_peft_adapter": sem, "difference_points": round(100 * (sem - em), 2)}))
