#!/usr/bin/env python3
"""Prefill and batch-1 decode speed of a decoder LM in Sculpt, PyTorch + transformers and
(where `llama_cpp` imports) llama.cpp through llama-cpp-python, in one run, on this machine.

Run with a Python that has torch, transformers and gguf (Sculpt itself needs none of them):
    python3 -m venv ~/venv-torch && ~/venv-torch/bin/pip install torch transformers gguf
    ~/venv-torch/bin/pip install llama-cpp-python      # optional: the llama.cpp column
    ~/venv-torch/bin/python Benchmarks/decoder_vs_torch.py "$(../shared/models/smollm2-135m-instruct/fetch.sh)" \
        --sculpt .build/release/sculpt --threads 2

The same measurement on every side: random prompt ids of --prefill tokens; prefill time is
the median of a few full forward passes of the prompt (building the KV cache, last-position
logits); decode is tokens/s of --decode greedy tokens one at a time after the prefill
(generate's time minus one prefill). transformers loads the GGUF dequantized to float32,
as Sculpt does; llama.cpp runs the GGUF's own quantized weights, so its column is a
reference point, not the same arithmetic.
"""
import argparse, json, statistics, subprocess, time


def sculpt_bench(cmd, model, prefill, decode, threads):
    args = cmd + ["bench", "model", model, "--prefill", str(prefill), "--decode", str(decode), "--threads", str(threads), "--json"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["prefill_seconds"], r["decode_tokens_per_second"]


def torch_model(model_path, threads):
    import os, torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model_path.endswith(".gguf"):
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path), torch_dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    return model.eval()


def torch_bench(model, prefill, decode, repeats=3):
    import torch
    ids = torch.randint(0, model.config.vocab_size, (1, prefill))
    with torch.no_grad():
        model(ids, use_cache=True)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model(ids, use_cache=True, logits_to_keep=1)
            times.append(time.perf_counter() - t0)
        pre = statistics.median(times)
        t0 = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=decode + 1, min_new_tokens=decode + 1, do_sample=False)
        total = time.perf_counter() - t0
    return pre, decode / max(total - pre, 1e-9)


def llama_cpp_bench(model_path, prefill, decode, threads):
    """llama.cpp in its own process, so PyTorch's spinning OpenMP threads in this one do not
    compete with llama.cpp's; None when llama_cpp does not import."""
    import sys
    r = subprocess.run([sys.executable, __file__, model_path, "--llama-cpp-only", "--prefill", str(prefill),
                        "--decode", str(decode), "--threads", str(threads)], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    p, d = json.loads(r.stdout.strip().splitlines()[-1])
    return p, d


def llama_cpp_measure(model_path, prefill, decode, threads, repeats=3):
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    import random
    llm = Llama(model_path=model_path, n_ctx=prefill + decode + 8, n_threads=threads, n_batch=max(prefill, 32), verbose=False)
    random.seed(0)
    ids = [random.randrange(llm.n_vocab()) for _ in range(prefill)]
    times = []
    for _ in range(repeats + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        times.append(time.perf_counter() - t0)
    pre = statistics.median(times[1:])
    llm.reset()
    llm.eval(ids)
    t0 = time.perf_counter()
    tok = llm.sample(top_k=1) if hasattr(llm, "sample") else 0
    for _ in range(decode):
        llm.eval([tok])
        tok = llm.sample(top_k=1)
    return pre, decode / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", help="a GGUF file or an HF decoder directory")
    ap.add_argument("--sculpt", default=".build/release/sculpt")
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of every engine; medians are reported")
    ap.add_argument("--llama-cpp-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.llama_cpp_only:
        r = llama_cpp_measure(a.model, a.prefill, a.decode, a.threads)
        if r:
            print(json.dumps(r))
        return
    model = torch_model(a.model, a.threads)
    runs = {"sculpt": [], "torch": [], "llama.cpp": []}
    for _ in range(a.rounds):
        runs["sculpt"].append(sculpt_bench([a.sculpt], a.model, a.prefill, a.decode, a.threads))
        runs["torch"].append(torch_bench(model, a.prefill, a.decode))
        lc = llama_cpp_bench(a.model, a.prefill, a.decode, a.threads) if a.model.endswith(".gguf") else None
        if lc:
            runs["llama.cpp"].append(lc)
    rows = [(name, statistics.median(p for p, _ in r), statistics.median(d for _, d in r)) for name, r in runs.items() if r]
    print(f"prefill {a.prefill} tokens, decode {a.decode} tokens, batch 1, {a.threads} threads, median of {a.rounds} interleaved rounds")
    for name, r in runs.items():
        if r:
            print(f"  {name}: prefill s {[round(p, 4) for p, _ in r]}, decode tok/s {[round(d, 1) for _, d in r]}")
    print(f"{'engine':10} {'prefill s':>10} {'decode tok/s':>13} {'prefill vs torch':>17} {'decode vs torch':>16}")
    tp, td = rows[1][1], rows[1][2]
    for name, p, d in rows:
        print(f"{name:10} {p:10.4f} {d:13.1f} {p / tp:16.2f}x {d / td:15.2f}x")


if __name__ == "__main__":
    main()
