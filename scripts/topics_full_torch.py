#!/usr/bin/env python3
"""The MiniLM `full` fine-tuning recipe of the README in PyTorch + transformers, so Sculpt's
accuracy can be compared with the peer's over several seeds on the same machine. Manual (needs
torch and transformers in a venv), never run by CI or needed by Sculpt.

    ~/venv-torch/bin/python scripts/topics_full_torch.py ../shared/models/all-MiniLM-L6-v2 \
        ../shared/datasets/fortunes/topics.train.jsonl ../shared/datasets/fortunes/topics.test.jsonl --seed 0

Recipe (Sculpt's defaults where the issue is silent): AdamW (torch defaults, weight decay
0.01 on every parameter), batch 32, 3 epochs, lr 5e-5, 10 % linear warm-up then linear decay,
gradient norm clipped to 1.0, at most 128 tokens, padding to the longest in the batch, mean
pooling over the attention mask, a new linear head (`--head-init transformers`: N(0, 0.02)
weights and zero bias, as transformers initialises BertForSequenceClassification's head and
as Sculpt does; `torch`: nn.Linear's default), dropout as in the model's config.
Prints the test accuracy after every epoch as one JSON line.
"""
import argparse, json, math, random
import torch
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir"); ap.add_argument("train"); ap.add_argument("test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--head-init", choices=["transformers", "torch"], default="transformers")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    random.seed(a.seed); torch.manual_seed(a.seed)
    train, test = read_jsonl(a.train), read_jsonl(a.test)
    labels = sorted({r["label"] for r in train})
    index = {l: i for i, l in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    enc = AutoModel.from_pretrained(a.model_dir, add_pooling_layer=False)
    head = torch.nn.Linear(enc.config.hidden_size, len(labels))
    if a.head_init == "transformers":
        torch.nn.init.normal_(head.weight, std=enc.config.initializer_range)
        torch.nn.init.zeros_(head.bias)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train) / a.batch)
    total = a.epochs * steps_per_epoch
    sched = get_linear_schedule_with_warmup(opt, math.ceil(0.1 * total), total)

    def logits(rows):
        b = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=128, return_tensors="pt")
        h = enc(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        return head((h * m).sum(1) / m.sum(1).clamp(min=1e-9))

    g = torch.Generator().manual_seed(a.seed)
    for epoch in range(1, a.epochs + 1):
        enc.train(); head.train()
        order = torch.randperm(len(train), generator=g).tolist()
        for s in range(steps_per_epoch):
            rows = [train[i] for i in order[s * a.batch:(s + 1) * a.batch]]
            y = torch.tensor([index[r["label"]] for r in rows])
            loss = torch.nn.functional.cross_entropy(logits(rows), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
        enc.eval(); head.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(test), 256):
                rows = test[s:s + 256]
                pred = logits(rows).argmax(-1)
                correct += sum(int(p) == index[r["label"]] for p, r in zip(pred, rows))
        print(json.dumps({"seed": a.seed, "head_init": a.head_init, "epoch": epoch, "test_accuracy": correct / len(test)}), flush=True)

if __name__ == "__main__":
    main()
