#!/usr/bin/env python3
"""Checks Sculpt's GGUF export against llama.cpp (llama-cpp-python from PyPI).

  python scripts/gguf_llama_cpp_check.py --sculpt .build/release/sculpt --model SMOLLM2.gguf \
      --texts ../shared/datasets/chat/chatterbot.test.jsonl --count 60 --work /tmp/gguf-check

1. `sculpt quantize MODEL --type f32 --out f32.gguf`, then `sculpt quantize f32.gguf --type q8_0|q4_0`.
2. llama.cpp quantizes the same f32.gguf itself (llama_model_quantize); the share of Q8_0 and
   Q4_0 blocks byte-equal to Sculpt's is reported (tensors both stored in the type).
3. llama.cpp loads each of Sculpt's files; on the first --count texts (a chat line's messages
   joined by newlines, tokenized without special tokens) it reports the tokenizer agreement,
   the mean |llama.cpp − Sculpt| next-token log-prob (Sculpt's from `sculpt score --out`), the
   perplexity of both engines, and how often greedy continuations agree.
Needs: pip install llama-cpp-python numpy. Nothing in Sculpt or its tests needs this script.
"""
import argparse, json, os, subprocess, sys, struct, time
import numpy as np
import llama_cpp


def sh(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out


def gguf_tensors(path):
    """name → (ggml type, raw bytes) through llama.cpp's own gguf reader (gguf-py ships with it)."""
    import gguf
    r = gguf.GGUFReader(path)
    return {t.name: (int(t.tensor_type), bytes(t.data)) for t in r.tensors}


def block_equality(ours, theirs, type_id, block_bytes):
    equal = total = 0
    for name, (t, data) in ours.items():
        if t != type_id or name not in theirs or theirs[name][0] != type_id:
            continue
        a = np.frombuffer(data, dtype=np.uint8).reshape(-1, block_bytes)
        b = np.frombuffer(theirs[name][1], dtype=np.uint8).reshape(-1, block_bytes)
        total += a.shape[0]
        equal += int((a == b).all(axis=1).sum())
    return equal, total


def llama_logprobs(llm, ids):
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    return np.array([logits[i, ids[i + 1]] - lse[i] for i in range(len(ids) - 1)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sculpt", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--greedy-prompts", type=int, default=8)
    ap.add_argument("--greedy-tokens", type=int, default=24)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    W = lambda n: os.path.join(a.work, n)

    sh(a.sculpt, "quantize", a.model, "--type", "f32", "--out", W("f32.gguf"), "--force")
    for t in ["q8_0", "q4_0"]:
        sh(a.sculpt, "quantize", W("f32.gguf"), "--type", t, "--out", W(f"sculpt-{t}.gguf"), "--force")

    results = {"blocks": {}, "files": {}}
    ours_f32 = gguf_tensors(W("f32.gguf"))
    for t, ftype, tid, bb in [("q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, 8, 34), ("q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, 2, 18)]:
        p = llama_cpp.llama_model_quantize_default_params()
        p.ftype = ftype
        p.nthread = a.threads
        rc = llama_cpp.llama_model_quantize(W("f32.gguf").encode(), W(f"llama-{t}.gguf").encode(), p)
        if rc != 0:
            sys.exit(f"llama_model_quantize {t} failed ({rc})")
        eq, tot = block_equality(gguf_tensors(W(f"sculpt-{t}.gguf")), gguf_tensors(W(f"llama-{t}.gguf")), tid, bb)
        results["blocks"][t] = {"equal": eq, "total": tot, "percent": 100.0 * eq / max(tot, 1)}
    del ours_f32

    texts = []
    with open(a.texts) as f:
        for line in f:
            if len(texts) == a.count:
                break
            o = json.loads(line)
            texts.append("\n".join(m["content"] for m in o["messages"]) if "messages" in o else o.get("text", ""))
    tf = W("texts.jsonl")
    with open(tf, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")

    prompts = texts[: a.greedy_prompts]
    for name in ["f32", "sculpt-q8_0", "sculpt-q4_0"]:
        path = W(f"{name}.gguf")
        sh(a.sculpt, "score", path, "--texts-file", tf, "--out", W(f"{name}-score.safetensors"))
        ours = read_safetensors(W(f"{name}-score.safetensors"))
        llm = llama_cpp.Llama(model_path=path, n_ctx=2048, logits_all=True, n_threads=a.threads, verbose=False)
        diffs, nll_ours, nll_theirs, n_tok, tok_agree = [], 0.0, 0.0, 0, 0
        for i, t in enumerate(texts):
            ids_ours = ours[f"text{i}.input_ids"].astype(int).tolist()
            ids_theirs = llm.tokenize(t.encode(), add_bos=False, special=False)
            tok_agree += ids_ours == ids_theirs
            lp_ours = ours[f"text{i}.next_token_logprob"].astype(np.float64)
            lp_theirs = llama_logprobs(llm, ids_ours)
            diffs.append(np.abs(lp_ours - lp_theirs))
            nll_ours -= lp_ours.sum(); nll_theirs -= lp_theirs.sum(); n_tok += len(lp_ours)
        d = np.concatenate(diffs)
        # Greedy continuations of the first prompts: Sculpt's generate vs llama.cpp's.
        agree_tokens = total_tokens = identical = 0
        for p in prompts:
            out = json.loads(sh(a.sculpt, "generate", path, "--prompt", p, "--max-new-tokens", str(a.greedy_tokens), "--json"))
            ours_ids, prompt_ids = out["output_ids"], out["input_ids"]
            llm.reset()
            theirs = []
            for tok in llm.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
                if tok in (llm.token_eos(),) or len(theirs) == len(ours_ids):
                    break
                theirs.append(tok)
            k = 0
            while k < min(len(ours_ids), len(theirs)) and ours_ids[k] == theirs[k]:
                k += 1
            agree_tokens += k; total_tokens += len(ours_ids); identical += ours_ids == theirs
        results["files"][name] = {
            "tokenizer_agreement": f"{tok_agree}/{len(texts)}",
            "mean_abs_logprob_diff": float(d.mean()), "max_abs_logprob_diff": float(d.max()),
            "perplexity_sculpt": float(np.exp(nll_ours / n_tok)), "perplexity_llama_cpp": float(np.exp(nll_theirs / n_tok)),
            "tokens": n_tok, "greedy_identical": f"{identical}/{len(prompts)}",
            "greedy_common_prefix": f"{agree_tokens}/{total_tokens}",
        }
        del llm

    print(f"llama-cpp-python {llama_cpp.__version__}; {len(texts)} texts of {a.texts}")
    for t, b in results["blocks"].items():
        print(f"{t}: {b['equal']}/{b['total']} blocks byte-equal to llama.cpp's own quantization ({b['percent']:.3f} %)")
    print(f"{'file':<14} {'tokens equal':>12} {'mean |Δ logp|':>14} {'max |Δ logp|':>13} {'ppl Sculpt':>11} {'ppl llama.cpp':>14} {'greedy same':>11} {'common prefix':>14}")
    for n, r in results["files"].items():
        print(f"{n:<14} {r['tokenizer_agreement']:>12} {r['mean_abs_logprob_diff']:>14.4f} {r['max_abs_logprob_diff']:>13.4f} "
              f"{r['perplexity_sculpt']:>11.2f} {r['perplexity_llama_cpp']:>14.2f} {r['greedy_identical']:>11} {r['greedy_common_prefix']:>14}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
