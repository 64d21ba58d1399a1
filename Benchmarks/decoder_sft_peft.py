#!/usr/bin/env python3
"""The PyTorch + transformers + PEFT peer of `sculpt train` on a decoder (chat SFT), with the
same recipe, data handling and exact-match evaluation; and (`--bench`) the training-step
time of both in one run.

Run with a Python that has torch, transformers, peft and gguf (Sculpt needs none of them):
    python3 -m venv ~/venv-torch && ~/venv-torch/bin/pip install torch transformers peft gguf accelerate
    SM=$(../shared/models/smollm2-135m-instruct/fetch.sh)
    # the recipe of docs/results/decoder-fine-tuning.md (LoRA r 8, alpha 16, dropout 0.05 on
    # q_proj,v_proj; 2 epochs, batch 8, lr 2e-4, weight decay 0.01, 10 % warm-up then linear
    # decay, clipping 1.0, 256 tokens, seed 0), then exact match on the test file:
    ~/venv-torch/bin/python Benchmarks/decoder_sft_peft.py train "$SM" --data ../shared/datasets/chat/everyday.train.jsonl \
        --test ../shared/datasets/chat/everyday.test.jsonl --method lora --out /tmp/peft-lora
    # step time of full and LoRA, batch 8 x 256 random tokens, 2 threads, both sides:
    ~/venv-torch/bin/python Benchmarks/decoder_sft_peft.py bench "$SM" --sculpt .build/release/sculpt

Data handling is Sculpt's (`LMData`): a chat line's assistant turns are the targets, each being
what rendering it adds after the conversation before it with the generation prompt (so the
end-of-turn text after it is learnt); segments are tokenised one by one; examples longer
than --max-length are cut there, and dropped when no target token is left. The loss is
transformers' (mean over the batch's target tokens).
"""
import argparse, json, math, os, random, resource, subprocess, sys, time


def load(model_path, threads):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    d, f = os.path.split(model_path)
    kwargs = {"gguf_file": f} if f.endswith(".gguf") else {}
    path = d if f.endswith(".gguf") else model_path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    tok = AutoTokenizer.from_pretrained(path, **kwargs)
    return model, tok


def examples(path, tok, max_length, train_on="completion"):
    out, truncated, dropped = [], 0, 0
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        msgs = json.loads(line)["messages"]
        full = tok.apply_chat_template(msgs, tokenize=False)
        cuts = []
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            before = tok.apply_chat_template(msgs[:i], tokenize=False, add_generation_prompt=True)
            through = tok.apply_chat_template(msgs[:i + 1], tokenize=False)
            assert through.startswith(before) and full.startswith(through)
            cuts.append((len(before.encode()), len(through.encode())))
        data = full.encode()
        ids, labels, pos = [], [], 0

        def add(a, b, target):
            seg = tok(data[a:b].decode(), add_special_tokens=False).input_ids
            ids.extend(seg)
            labels.extend(seg if target or train_on == "all" else [-100] * len(seg))
        for a, b in cuts:
            if pos < a:
                add(pos, a, False)
            add(a, b, True)
            pos = b
        if pos < len(data):
            add(pos, len(data), False)
        if len(ids) > max_length:
            truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
            if all(l == -100 for l in labels[1:]):
                dropped += 1
                continue
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        out.append({"ids": ids, "labels": labels, "prompt": msgs[:last], "reference": msgs[last]["content"]})
    return out, truncated, dropped


def batch(rows, pad):
    import torch
    s = max(len(r["ids"]) for r in rows)
    ids = torch.full((len(rows), s), pad, dtype=torch.long)
    labels = torch.full((len(rows), s), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), s), dtype=torch.long)
    for b, r in enumerate(rows):
        n = len(r["ids"])
        ids[b, :n] = torch.tensor(r["ids"])
        labels[b, :n] = torch.tensor(r["labels"])
        mask[b, :n] = 1
    return ids, mask, labels


def exact_match(model, tok, rows, max_new_tokens=8, batch_size=16):
    import torch
    model.eval()
    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts = [tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: len(prompts[i]))
    answers = [None] * len(rows)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            part = order[start:start + batch_size]
            enc = tok([prompts[i] for i in part], return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
            for k, i in enumerate(part):
                new = out[k, enc["input_ids"].shape[1]:].tolist()
                stops = {tok.eos_token_id} | set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list) else [model.generation_config.eos_token_id])
                kept = []
                for t in new:
                    if t in stops:
                        break
                    kept.append(t)
                answers[i] = tok.decode(kept, skip_special_tokens=True).strip()
    correct = sum(a == r["reference"].strip() for a, r in zip(answers, rows))
    return correct / len(rows), answers


def train(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import get_linear_schedule_with_warmup
    torch.manual_seed(args.seed)
    model, tok = load(args.model, args.threads)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows, truncated, dropped = examples(args.data, tok, args.max_length)
    print(f"{len(rows)} examples ({truncated} truncated, {dropped} dropped)", file=sys.stderr)
    test = examples(args.test, tok, 10 ** 9)[0] if args.test else []
    if args.zero_shot:
        em, _ = exact_match(model, tok, test)
        print(json.dumps({"method": "zero-shot", "exact_match": em, "examples": len(test)}))
        return
    if args.method == "lora":
        cfg = LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                         target_modules=args.lora_targets.split(","), task_type="CAUSAL_LM")
        model = get_peft_model(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(rows) / args.batch_size)
    total = steps_per_epoch * args.epochs
    sched = get_linear_schedule_with_warmup(opt, round(args.warmup_ratio * total), total)
    model.train()
    t0, step = time.time(), 0
    for epoch in range(args.epochs):
        order = list(range(len(rows)))
        random.Random(args.seed + epoch).shuffle(order)
        for start in range(0, len(order), args.batch_size):
            ids, mask, labels = batch([rows[i] for i in order[start:start + args.batch_size]], pad)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, args.clip_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % 10 == 0 or step == total:
                el = time.time() - t0
                print(f"step {step}/{total} loss {loss.item():.4f} {el / step:.2f} s/step", file=sys.stderr, flush=True)
    seconds = time.time() - t0
    result = {"method": args.method, "steps": total, "train_seconds": round(seconds, 1), "peak_memory_mb": round(peak_mb())}
    if args.out and args.method == "lora":
        model.save_pretrained(args.out)
        # The base is the GGUF file (PEFT records its directory); Sculpt reads the path given.
        p = os.path.join(args.out, "adapter_config.json")
        c = json.load(open(p))
        c["base_model_name_or_path"] = os.path.abspath(args.model)
        json.dump(c, open(p, "w"), indent=2)
    if test:
        em, answers = exact_match(model, tok, test)
        result["exact_match"] = em
        result["examples"] = len(test)
    print(json.dumps(result))


def peak_mb():
    """This process's peak resident memory (VmHWM: starts afresh at exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def torch_step(args):
    """One method's PyTorch (+ PEFT) step time, in a process of its own so its peak memory is its own."""
    import torch
    from peft import LoraConfig, get_peft_model
    model, tok = load(args.model, args.threads)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), generator=g)
    if args.method == "lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    model.train()
    times = []
    for i in range(args.steps + 1):
        t = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i > 0:
            times.append(time.perf_counter() - t)
    print(json.dumps({"seconds_per_step": sorted(times)[len(times) // 2], "peak_memory_mb": peak_mb()}))


def bench(args):
    """Sculpt and PyTorch (+ PEFT) alternate per method, each side in its own process."""
    rows = []
    for method in args.methods.split(","):
        t = subprocess.run([sys.executable, __file__, "torch-step", args.model, "--method", method, "--batch", str(args.batch), "--seq", str(args.seq),
                            "--threads", str(args.threads), "--steps", str(args.steps)], check=True, capture_output=True, text=True).stdout
        tr = json.loads(t.strip().splitlines()[-1])
        out = subprocess.run([args.sculpt, "bench", "model", args.model, "--train", "--method", method, "--batch", str(args.batch),
                              "--seq", str(args.seq), "--threads", str(args.threads), "--seconds", str(args.seconds), "--json"],
                             check=True, capture_output=True, text=True).stdout
        s = json.loads(out.strip().splitlines()[-1])
        rows.append((method, s["seconds_per_step"], tr["seconds_per_step"], s.get("peak_memory_mb"), tr["peak_memory_mb"]))
        print(json.dumps({"method": method, "sculpt_s": s["seconds_per_step"], "torch_s": tr["seconds_per_step"], "ratio": s["seconds_per_step"] / tr["seconds_per_step"],
                          "sculpt_peak_mb": s.get("peak_memory_mb"), "torch_peak_mb": tr["peak_memory_mb"]}), flush=True)
    peer = "PyTorch + PEFT" if "lora" in args.methods else "PyTorch"
    print(f"\n| method | Sculpt s/step | {peer} s/step | Sculpt / peer time | Sculpt peak MB | peer peak MB |")
    print("|---|---|---|---|---|---|")
    for m, a, b, ma, mb in rows:
        print(f"| {m} | {a:.2f} | {b:.2f} | {a / b:.2f} | {ma:.0f} | {mb:.0f} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("model")
    t.add_argument("--data", required=True)
    t.add_argument("--test")
    t.add_argument("--method", default="lora", choices=["lora", "full"])
    t.add_argument("--zero-shot", action="store_true")
    t.add_argument("--out")
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-ratio", type=float, default=0.1)
    t.add_argument("--clip-norm", type=float, default=1.0)
    t.add_argument("--max-length", type=int, default=256)
    t.add_argument("--lora-rank", type=int, default=8)
    t.add_argument("--lora-alpha", type=float, default=16)
    t.add_argument("--lora-dropout", type=float, default=0.05)
    t.add_argument("--lora-targets", default="q_proj,v_proj")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("bench")
    b.add_argument("model")
    b.add_argument("--sculpt", required=True)
    b.add_argument("--methods", default="full,lora")
    b.add_argument("--batch", type=int, default=8)
    b.add_argument("--seq", type=int, default=256)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--steps", type=int, default=3)
    b.add_argument("--seconds", type=float, default=10)
    ts = sub.add_parser("torch-step")
    ts.add_argument("model")
    ts.add_argument("--method", default="full")
    ts.add_argument("--batch", type=int, default=8)
    ts.add_argument("--seq", type=int, default=256)
    ts.add_argument("--threads", type=int, default=2)
    ts.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    {"train": train, "bench": bench, "torch-step": torch_step}[args.cmd](args)


if __name__ == "__main__":
    main()
