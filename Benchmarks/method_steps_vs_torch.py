#!/usr/bin/env python3
"""Training-step time of each fine-tuning method relative to a full step, in Sculpt and in
PyTorch (+ PEFT for LoRA), in one run on this machine, one thread each.

    ~/venv-torch/bin/pip install torch transformers peft
    ~/venv-torch/bin/python Benchmarks/method_steps_vs_torch.py ../shared/models/all-MiniLM-L6-v2

The issue asks a LoRA step to take <= 0.6x and an s2ft step <= 0.7x a full step; this shows
what the peer reaches with the same set-up, so the ratios can be judged against it. PEFT has
no s2ft: the PyTorch s2ft here is the pattern of S2FT's own code — the frozen weight plus a
trainable zero-initialised block of its first k input columns (attention.output.dense: 10 % of
the heads; output.dense: 10 % of the FFN channels; the permutation that makes the chosen units
the first ones does not change the cost), everything else frozen. Both sides: random token ids, a linear
head on masked-mean pooled features, cross-entropy, backward, AdamW over what trains; warm-up,
then the median step time (Sculpt: CPU seconds per step, PyTorch: wall seconds, one thread —
the same thing on an otherwise idle core).
"""
import argparse, json, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_vs_torch import median_step_seconds  # the same timing on both benchmarks

def sculpt_time(cmd, model, method, batch, seq, seconds):
    args = cmd + ["bench", "model", model, "--train", "--method", method, "--batch", str(batch), "--seq", str(seq),
                  "--threads", "1", "--seconds", str(seconds), "--json"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["cpu_seconds_per_step"]

def attach_column_block(linear, k):
    """y = x·Wᵀ + b + x[..., :k]·Sᵀ with S [out, k] trainable and zero (S2FT's column layer)."""
    import torch
    linear.s2 = torch.nn.Parameter(torch.zeros(linear.out_features, k))
    base = linear.forward
    linear.forward = lambda x: base(x) + torch.nn.functional.linear(x[..., :k], linear.s2)

def torch_time(model_dir, method, batch, seq, seconds):
    import torch
    from transformers import BertModel
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    if method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query", "value"]))
    elif method == "bitfit":
        for n, p in model.named_parameters():
            p.requires_grad_(n.endswith(".bias"))
    elif method == "s2ft":
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.encoder.layer:
            heads = round(0.1 * layer.attention.self.num_attention_heads)
            attach_column_block(layer.attention.output.dense, heads * layer.attention.self.attention_head_size)
            attach_column_block(layer.output.dense, round(0.1 * layer.output.dense.in_features))
    head = torch.nn.Linear(384, 2)
    ids = torch.randint(0, 30522, (batch, seq))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (batch,))
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5)
    model.train()

    def step():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        loss = torch.nn.functional.cross_entropy(head((h * m).sum(1) / m.sum(1)), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return median_step_seconds(step, seconds)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--sculpt", default="swift run -c release sculpt", help="command that runs the sculpt CLI")
    a = ap.parse_args()
    cmd = a.sculpt.split()
    methods = ["full", "lora", "s2ft", "bitfit"]
    s = {m: sculpt_time(cmd, a.model_dir, m, a.batch, a.seq, a.seconds) for m in methods}
    t = {m: torch_time(a.model_dir, m, a.batch, a.seq, a.seconds) for m in methods}
    print(f"batch {a.batch} x {a.seq}, one thread; LoRA r 8 on query+value; s2ft 10 % of heads and channels, output side")
    print(f"{'method':8} {'sculpt s':>9} {'x full':>7} {'torch s':>9} {'x full':>7}")
    for m in methods:
        print(f"{m:8} {s[m]:9.4f} {s[m] / s['full']:7.2f} {t[m]:9.4f} {t[m] / t['full']:7.2f}")

if __name__ == "__main__":
    main()
