#!/usr/bin/env python3
"""Peak resident memory of `sculpt merge` on three MiniLM-sized fine-tunes.

Makes three fine-tunes of ../shared/models/all-MiniLM-L6-v2 by adding N(0, 0.01) noise to a
few layers (written to /tmp, numpy only, no torch), merges them with task_arithmetic and ties,
and reports VmHWM (from `sculpt merge --report-memory`) against the model's file size and its
largest tensor. Usage: python3 Benchmarks/merge_memory.py [path/to/sculpt]
"""
import json, os, shutil, struct, subprocess, sys
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
base = os.environ.get("SCULPT_SHARED", os.path.join(os.path.dirname(root), "shared")) + "/models/all-MiniLM-L6-v2"
sculpt = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/release/sculpt")
work = "/tmp/sculpt-merge-bench"

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return header, data

def write(path, header, tensors):
    meta = header.get("__metadata__", {"format": "pt"})
    out, offset, blobs = {"__metadata__": meta}, 0, []
    for name in sorted(k for k in header if k != "__metadata__"):
        b = tensors[name]
        out[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"], "data_offsets": [offset, offset + len(b)]}
        offset += len(b); blobs.append(b)
    h = json.dumps(out).encode(); h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

header, data = read(base + "/model.safetensors")
names = [k for k in header if k != "__metadata__"]
raw = {k: data[header[k]["data_offsets"][0]:header[k]["data_offsets"][1]] for k in names}
shutil.rmtree(work, ignore_errors=True); os.makedirs(work)
rng = np.random.default_rng(0)
dirs = []
for i, layers in enumerate([(0, 1), (2, 3), (4, 5)]):
    t = dict(raw)
    for k in names:
        if header[k]["dtype"] == "F32" and any(f"encoder.layer.{l}." in k for l in layers):
            a = np.frombuffer(raw[k], dtype=np.float32)
            t[k] = (a + rng.normal(0, 0.01, a.shape).astype(np.float32)).tobytes()
    d = f"{work}/ft{i}"; os.makedirs(d)
    write(d + "/model.safetensors", header, t)
    shutil.copy(base + "/config.json", d)
    dirs.append(d)

size = os.path.getsize(base + "/model.safetensors")
largest = max(len(b) for b in raw.values())
print(f"model file {size/1e6:.1f} MB, largest tensor {largest/1e6:.1f} MB")
for method, extra in [("task_arithmetic", ""), ("ties", "parameters: {density: 0.5}\n")]:
    cfg = f"{work}/{method}.yaml"
    with open(cfg, "w") as f:
        f.write(f"merge_method: {method}\nbase_model: {base}\nmodels:\n" + "".join(f"  - model: {d}\n" for d in dirs) + extra)
    out = f"{work}/out-{method}"
    r = subprocess.run([sculpt, "merge", cfg, "--out", out, "--report-memory", "--json"], capture_output=True, text=True)
    if r.returncode != 0: sys.exit(r.stderr)
    j = json.loads(r.stdout)
    peak = j["peakRSSBytes"]
    print(f"{method}: peak RSS {peak/1e6:.1f} MB = {peak/size:.2f} x model file; tensor buffers peak "
          f"{j['report']['peakBuffers']} ({j['report']['peakBufferBytes']/1e6:.1f} MB); {j['report']['seconds']:.1f} s")
