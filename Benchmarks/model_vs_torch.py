#!/usr/bin/env python3
"""Times BERT inference and training steps in Sculpt and in PyTorch, in one run, on this machine.

Run with a Python that has torch and transformers (not needed by Sculpt itself), e.g.
    python -m venv ~/venv-torch && ~/venv-torch/bin/pip install torch transformers
    ~/venv-torch/bin/python Benchmarks/model_vs_torch.py ../shared/models/all-MiniLM-L6-v2

Both sides measure the same thing: random token ids, warm-up, then the median step time.
A training step is forward, masked-mean pooling, a linear head, cross-entropy, backward and
an AdamW update; inference is a forward pass without gradients.
"""
import argparse, json, os, statistics, subprocess, sys, time

def sculpt_time(cmd, model, batch, seq, train, threads, seconds):
    args = cmd + ["bench", "model", model, "--batch", str(batch), "--seq", str(seq), "--threads", str(threads),
                  "--seconds", str(seconds), "--json"] + (["--train"] if train else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds_per_step"]

def torch_time(model_dir, batch, seq, train, threads, seconds):
    import torch
    from transformers import BertModel
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (batch,))
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-5)

    def step():
        if train:
            model.train()
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            feats = (h * m).sum(1) / m.sum(1)
            loss = torch.nn.functional.cross_entropy(head(feats), labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            model.eval()
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)

    return median_step_seconds(step, seconds)

def median_step_seconds(step, seconds):
    """One warm-up call of `step`, then the median time of calls over `seconds` (at least 3)."""
    step()
    times, begin = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - begin < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sculpt", default="swift run -c release sculpt", help="command that runs the sculpt CLI")
    ap.add_argument("--cases", default="infer:32x128,train:32x128,infer:1x32")
    a = ap.parse_args()
    cmd = a.sculpt.split()
    rows = []
    for case in a.cases.split(","):
        mode, shape = case.split(":")
        b, s = map(int, shape.split("x"))
        train = mode == "train"
        t_torch = torch_time(a.model_dir, b, s, train, a.threads, a.seconds)
        t_sculpt = sculpt_time(cmd, a.model_dir, b, s, train, a.threads, a.seconds)
        rows.append((mode, b, s, a.threads, t_sculpt, t_torch, t_sculpt / t_torch))
    print(f"{'mode':6} {'batch':>5} {'seq':>4} {'threads':>7} {'sculpt s':>9} {'torch s':>9} {'sculpt/torch':>12}")
    for r in rows:
        print(f"{r[0]:6} {r[1]:5d} {r[2]:4d} {r[3]:7d} {r[4]:9.4f} {r[5]:9.4f} {r[6]:12.2f}")

if __name__ == "__main__":
    main()
