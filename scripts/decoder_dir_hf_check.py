#!/usr/bin/env python3
"""Checks a decoder HF directory Sculpt wrote (`sculpt prune`'s pruned/ or recovery/final/,
`sculpt extract`, a full fine-tune's final/) in transformers (a manual check, not CI; needs
torch + transformers).

    ~/venv-torch/bin/python scripts/decoder_dir_hf_check.py DIR [DIR ...] --sculpt .build/release/sculpt

For each directory: AutoModelForCausalLM.from_pretrained with no missing or unexpected keys,
AutoTokenizer's ids equal to Sculpt's, and last-position logits against `sculpt score DIR
--out` (bound: 5e-3).
"""
import argparse, json, os, subprocess, sys, tempfile

TEXTS = ["The capital of France is", "My internet is not working. What should I do?", "Once upon a time, a small robot"]


def check(d, sculpt, threads):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    model, info = AutoModelForCausalLM.from_pretrained(d, output_loading_info=True, dtype=torch.float32)
    missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
    tok = AutoTokenizer.from_pretrained(d)
    work = tempfile.mkdtemp(prefix="sculpt-dircheck-")
    texts = os.path.join(work, "texts.jsonl")
    with open(texts, "w") as f:
        for t in TEXTS:
            f.write(json.dumps({"text": t}) + "\n")
    scores = os.path.join(work, "score.safetensors")
    subprocess.run([sculpt, "score", d, "--texts-file", texts, "--out", scores, "--json", "--threads", str(threads)], check=True, capture_output=True)
    ours = load_file(scores)
    bad_ids, worst = 0, 0.0
    with torch.no_grad():
        for i, t in enumerate(TEXTS):
            ids = tok(t, add_special_tokens=False)["input_ids"]
            bad_ids += ids != ours[f"text{i}.input_ids"].tolist()
            logits = model(torch.tensor([ids])).logits[0, -1]
            worst = max(worst, (logits - ours[f"text{i}.last_logits"]).abs().max().item())
    c = model.config
    print(f"{d}: {type(model).__name__}, {c.num_hidden_layers} layers, {c.num_attention_heads} heads / {c.num_key_value_heads} kv, "
          f"intermediate {c.intermediate_size}, hidden {c.hidden_size}; missing keys {missing}, unexpected keys {unexpected}; "
          f"texts with other ids {bad_ids} of {len(TEXTS)}; last-position logits vs sculpt score: max |diff| = {worst:.3g}")
    return not missing and not unexpected and bad_ids == 0 and worst < 5e-3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--sculpt", default=".build/release/sculpt")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ok = all([check(d, a.sculpt, a.threads) for d in a.dirs])
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
