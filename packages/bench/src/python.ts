/**
 * The Python peers: the PyTorch one (a Python with torch, found as `python3` on PATH, else the interop
 * venv `.venv-interop`, made by `node scripts/interop/setup-venv.mjs`) and the PEFT one (the interop
 * venv's Python with torch, transformers and peft). Never installs anything.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** A Python that imports torch, or why there is none. */
export type TorchPeer =
  | { available: true; python: string; source: string; torch: string; safetensors: string | null; threads: number }
  | { available: false; status: string };

const PROBE = 'import json, torch\ntry:\n    import safetensors; st = safetensors.__version__\nexcept Exception:\n    st = None\nprint(json.dumps({"torch": torch.__version__, "safetensors": st, "threads": torch.get_num_threads()}))';

function probe(python: string): { torch: string; safetensors: string | null; threads: number } | null {
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return null;
  }
}

/** The interop venv's Python, with how to name it, when the venv exists. */
function interopVenv(repoRoot: string): [string, string] | null {
  const venv = join(repoRoot, '.venv-interop', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  return existsSync(venv) ? [venv, '.venv-interop (scripts/interop/setup-venv.mjs)'] : null;
}

/** Finds the PyTorch peer: `python3 -c "import torch"` first, then `<repo>/.venv-interop`. */
export function findTorch(repoRoot: string): TorchPeer {
  const candidates: Array<[string, string]> = [['python3', 'python3 on PATH']];
  const venv = interopVenv(repoRoot);
  if (venv) candidates.push(venv);
  for (const [python, source] of candidates) {
    const found = probe(python);
    if (found) return { available: true, python, source, ...found };
  }
  return { available: false, status: 'not installed (python3 -c "import torch" fails and there is no .venv-interop with torch)' };
}

/** A Python that imports torch, transformers and peft, or why there is none. */
export type PeftPeer =
  | { available: true; python: string; source: string; torch: string; transformers: string; peft: string; threads: number }
  | { available: false; status: string };

const PEFT_PROBE = 'import json, torch, transformers, peft\nprint(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "threads": torch.get_num_threads()}))';

/**
 * Finds the PEFT peer: the interop venv's Python first (the environment the interop suite judges
 * with), then `python3` on PATH; available only where torch, transformers and peft all import.
 */
export function findPeft(repoRoot: string): PeftPeer {
  const candidates: Array<[string, string]> = [];
  const venv = interopVenv(repoRoot);
  if (venv) candidates.push(venv);
  candidates.push(['python3', 'python3 on PATH']);
  for (const [python, source] of candidates) {
    const r = spawnSync(python, ['-c', PEFT_PROBE], { encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) continue;
    try {
      const found = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { torch: string; transformers: string; peft: string; threads: number };
      return { available: true, python, source, ...found };
    } catch {
      // not this one
    }
  }
  return {
    available: false,
    status: `not installed (${venv ? 'the .venv-interop Python' : 'there is no .venv-interop (node scripts/interop/setup-venv.mjs makes it) and python3'} cannot import torch, transformers and peft)`,
  };
}

/**
 * Times `addmm_` on the kernel shapes, with torch's default thread count and with one thread.
 * Prints one JSON line: {"<id>": {"default": [s, ...], "single": [s, ...]}}.
 */
export const TORCH_KERNEL_SCRIPT = String.raw`
import json, sys, time, torch
shapes = json.loads(sys.argv[1])
iterations = int(sys.argv[2])
out = {}
default_threads = torch.get_num_threads()
torch.manual_seed(0)
for s in shapes:
    rows, cols, rank = s["rows"], s["cols"], s["rank"]
    linear = s["orientation"] == "linear"
    out_f, in_f = (rows, cols) if linear else (cols, rows)
    w = torch.randn(rows, cols) * 0.02
    a = torch.randn(rank, in_f) * 0.02
    b = torch.randn(out_f, rank) * 0.02
    res = {}
    for mode, threads in (("default", default_threads), ("single", 1)):
        torch.set_num_threads(threads)
        times = []
        with torch.no_grad():
            for i in range(iterations + 1):
                t0 = time.perf_counter()
                if linear:
                    w.addmm_(b, a, alpha=1e-3)          # Linear [out, in] += s * B @ A
                else:
                    w.addmm_(a.t(), b.t(), alpha=1e-3)  # Conv1D [in, out] += s * (B @ A).T
                t1 = time.perf_counter()
                if i > 0:
                    times.append(t1 - t0)
        res[mode] = times
    torch.set_num_threads(default_threads)
    out[s["id"]] = res
print(json.dumps({"threads": default_threads, "results": out}))
`;

/**
 * What a PyTorch user writes to merge a LoRA adapter into a GPT-2 checkpoint without PEFT: load
 * everything, `addmm_` each LoRA pair into its Conv1D weight, save. Uses safetensors' own
 * load_file/save_file when installed (the usual way), else reads and writes the format by hand.
 */
export const TORCH_NAIVE_MERGE_SCRIPT = String.raw`
import json, os, struct, sys
import torch
base, adapter, out = sys.argv[1:4]
try:
    from safetensors.torch import load_file, save_file
except ImportError:
    load_file = save_file = None
    DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
def load(path):
    if load_file:
        return load_file(path)
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    header.pop("__metadata__", None)
    return {k: torch.frombuffer(data, dtype=DT[v["dtype"]], offset=v["data_offsets"][0], count=(v["data_offsets"][1] - v["data_offsets"][0]) // DT[v["dtype"]].itemsize).view(v["shape"]) for k, v in header.items()}
def save(sd, path):
    if save_file:
        return save_file(sd, path, metadata={"format": "pt"})
    names = sorted(sd)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for k in names:
        t = sd[k]
        header[k] = {"dtype": {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + t.numel() * t.element_size()]}
        offset += t.numel() * t.element_size()
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in names:
            f.write(sd[k].contiguous().numpy().tobytes())
cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
sd = load(os.path.join(base, "model.safetensors"))
ad = load(os.path.join(adapter, "adapter_model.safetensors"))
scale = cfg["lora_alpha"] / cfg["r"]
with torch.no_grad():
    for key, a in ad.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len("base_model.model."):-len(".lora_A.weight")]
        b = ad[key.replace(".lora_A.", ".lora_B.")]
        sd[module + ".weight"].addmm_(a.t(), b.t(), alpha=scale)  # GPT-2 Conv1D [in, out] += s * (B @ A).T
os.makedirs(out, exist_ok=True)
save(sd, os.path.join(out, "model.safetensors"))
`;

/**
 * What PEFT users run to merge an adapter: load the base with transformers, wrap it in the adapter
 * with PEFT, `merge_and_unload`, `save_pretrained` (safetensors). The hub is switched off: both
 * directories are local, and a network call must never enter the timing.
 */
export const PEFT_MERGE_SCRIPT = String.raw`
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
from transformers import GPT2LMHeadModel
from peft import PeftModel
base, adapter, out = sys.argv[1:4]
model = GPT2LMHeadModel.from_pretrained(base)
model = PeftModel.from_pretrained(model, adapter)
model = model.merge_and_unload()
model.save_pretrained(out)
`;
