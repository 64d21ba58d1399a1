#!/usr/bin/env python3
"""Checks `sculpt convert` against transformers (not part of CI; needs torch + transformers + gguf).

    ~/venv-torch/bin/python scripts/convert_hf_check.py "$(../shared/models/smollm2-135m-instruct/fetch.sh)" \
        --sculpt .build/release/sculpt

Converts the GGUF to an HF directory with Sculpt, loads it with AutoModelForCausalLM and
AutoTokenizer (strict: no missing or unexpected keys), and compares on a few texts:
token ids against Sculpt's tokenizer, and last-position logits against `sculpt score --out`
and against transformers loading the GGUF itself.
"""
import argparse, json, os, subprocess, sys, tempfile

TEXTS = ["The capital of France is", "def add(a, b):\n    return", "Once upon a time, in a small village,", "日本の首都は"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--sculpt", default=".build/release/sculpt")
    a = ap.parse_args()
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    work = tempfile.mkdtemp(prefix="sculpt-convert-")
    out = os.path.join(work, "hf")
    subprocess.run([a.sculpt, "convert", a.gguf, "--out", out], check=True)
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True, dtype=torch.float32)
    missing, unexpected = info["missing_keys"], info["unexpected_keys"]
    print(f"missing keys: {sorted(missing)}; unexpected keys: {sorted(unexpected)}")
    tok = AutoTokenizer.from_pretrained(out)
    ref = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.gguf), gguf_file=os.path.basename(a.gguf), dtype=torch.float32)
    texts = os.path.join(work, "texts.jsonl")
    with open(texts, "w") as f:
        for t in TEXTS:
            f.write(json.dumps({"text": t}) + "\n")
    scores = os.path.join(work, "score.safetensors")
    subprocess.run([a.sculpt, "score", a.gguf, "--texts-file", texts, "--out", scores, "--json"], check=True, capture_output=True)
    sculpt = load_file(scores)
    worst_ids, worst_sculpt, worst_gguf = 0, 0.0, 0.0
    with torch.no_grad():
        for i, t in enumerate(TEXTS):
            ids = tok(t, add_special_tokens=False)["input_ids"]
            ours = sculpt[f"text{i}.input_ids"].tolist()
            worst_ids += ids != ours
            x = torch.tensor([ids])
            logits = model(x).logits[0, -1]
            worst_sculpt = max(worst_sculpt, (logits - sculpt[f"text{i}.last_logits"]).abs().max().item())
            worst_gguf = max(worst_gguf, (logits - ref(x).logits[0, -1]).abs().max().item())
    print(f"texts with different ids: {worst_ids} of {len(TEXTS)}")
    print(f"last-position logits, converted dir in transformers vs sculpt score: max |diff| = {worst_sculpt:.3g}")
    print(f"last-position logits, converted dir vs transformers loading the GGUF: max |diff| = {worst_gguf:.3g}")
    ok = not missing and not unexpected and worst_ids == 0 and worst_sculpt < 5e-3 and worst_gguf < 5e-3
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
