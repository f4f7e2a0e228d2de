#!/usr/bin/env python3
"""Writes interop test cases made by the REAL libraries (torch, transformers, peft).

Each case directory holds:

  base/      a tiny seeded GPT-2 checkpoint written by transformers' save_pretrained
             (config.json + model.safetensors [+ generation_config.json]).
  adapter/   a LoRA adapter written by PEFT: get_peft_model(model, LoraConfig(..., init_lora_weights=False))
             then save_pretrained (adapter_config.json + adapter_model.safetensors).
  expected/  ground truth: a fresh f32 copy of the base, PeftModel.from_pretrained(base, adapter/)
             (i.e. the adapter as PEFT reads it back from disk), merge_and_unload(), cast back to the
             base dtype, save_pretrained in the base's layout. Valid ground truth here because no case
             touches the tied wte/lm_head pair (SPEC §4). Files of base/ that save_pretrained does not
             write (generation_config.json of an unprefixed base) are copied, as a merger must (SPEC §0.4).
  case.json  what the case is: config, layout, dtype, how PEFT resolved each LoRA module (r, alpha,
             scale), versions, seeds.

Usage:
  python peft_cases.py --out DIR [--cases a,b,...] [--size tiny|unit] [--force]
  python peft_cases.py --list
  python peft_cases.py --unit-test-data packages/core/test/data/peft   # the committed TS test data

Deterministic: seeds are derived from the case name, and PYTHONHASHSEED is pinned to 0 (re-exec) because
PEFT writes target_modules from a set; reruns write identical files.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import sys
import time
import zlib
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent

# Sizes of the generated base models. "tiny" for the interop suite, "unit" for committed test data.
SIZES = {
    "tiny": dict(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64, bos_token_id=99, eos_token_id=99),
    "unit": dict(n_embd=16, n_layer=2, n_head=2, vocab_size=50, n_positions=16, bos_token_id=49, eos_token_id=49),
}

# The cases. `lora` holds LoraConfig kwargs (init_lora_weights=False is always added).
CASES: dict[str, dict] = {
    "c-attn-r4": dict(
        desc="(a) c_attn only, r=4, lora_alpha=8",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8),
    ),
    "attn-mlp": dict(
        desc="(b) targets [c_attn, c_proj, c_fc]; c_proj matches attn.c_proj AND mlp.c_proj",
        lora=dict(target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8),
    ),
    "rank-alpha-pattern": dict(
        desc="(c) rank_pattern and alpha_pattern, resolved independently (regex, first match, file order)",
        lora=dict(
            target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8,
            rank_pattern={"h.0.attn.c_attn": 2, "c_fc": 6},
            alpha_pattern={"^transformer.h.1.mlp.c_proj": 3, "h.1.attn.c_attn": 5},
        ),
    ),
    "alpha-pattern-overlap": dict(
        desc="alpha_pattern with two keys matching h.1.mlp.c_fc; created in order {h.1.mlp.c_fc: 3, c_fc: 10}, "
             "but saved sorted (sort_keys=True), so on reload 'c_fc' matches first and BOTH c_fc layers use alpha 10. "
             "A merger must follow the file (= what PeftModel.from_pretrained does), not the creation-time order.",
        lora=dict(target_modules=["c_fc"], r=4, lora_alpha=8, alpha_pattern={"h.1.mlp.c_fc": 3, "c_fc": 10}),
    ),
    "rslora": dict(
        desc="(d) use_rslora: scale = alpha/sqrt(r)",
        lora=dict(target_modules=["c_attn", "c_fc"], r=8, lora_alpha=16, use_rslora=True),
    ),
    "regex-target": dict(
        desc="(e) target_modules as a regex string (re.fullmatch on the module path)",
        lora=dict(target_modules=r".*\.h\.1\..*(c_attn|c_fc)", r=4, lora_alpha=8),
    ),
    "layers-to-transform": dict(
        desc="(f) layers_to_transform=[1] with layers_pattern='h'",
        lora=dict(target_modules=["c_attn", "c_proj"], r=4, lora_alpha=8, layers_to_transform=[1], layers_pattern="h"),
    ),
    "float-alpha": dict(
        desc="(g) float lora_alpha=12.5",
        lora=dict(target_modules=["c_attn", "c_proj"], r=4, lora_alpha=12.5),
    ),
    "unprefixed-adapter-keys": dict(
        desc="(h) adapter saved by PEFT, then 'base_model.model.' stripped from every tensor key (what transformers' "
             "integration writes with save_pretrained(save_peft_format=False)); adapter_config.json unchanged. "
             "expected/ was merged from the adapter before stripping: PeftModel.from_pretrained (peft 0.21.0) does not "
             "load prefix-less keys (warns 'Found missing adapter keys' and keeps the init weights); transformers' "
             "load_adapter strips the prefix and loads both forms, so the judge uses that for this case",
        lora=dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8),
        strip_adapter_prefix=True,
    ),
    "base-f16": dict(
        desc="(i) F16 base: the f32 model is rounded to float16 and saved; the adapter is created (and saved, F32) "
             "on the f16 weights upcast to f32; expected = merge in f32 then one rounding to float16",
        lora=dict(target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8),
        base_dtype="float16",
    ),
    "base-bf16": dict(
        desc="(i) BF16 base: as base-f16 with bfloat16",
        lora=dict(target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8),
        base_dtype="bfloat16",
    ),
    "hub-layout-base": dict(
        desc="base in the layout of the Hub 'gpt2' checkpoint: unprefixed keys (saved from GPT2Model), config "
             "architectures GPT2LMHeadModel, plus h.N.attn.bias causal-mask tensors [1,1,P,P] F32 (unknown to "
             "transformers 5, to be passed through); adapter made on GPT2LMHeadModel (keys ...transformer.h...)",
        lora=dict(target_modules=["c_attn", "c_proj"], r=4, lora_alpha=8),
        base_layout="hub",
    ),
    "gpt2model": dict(
        desc="base and adapter both from GPT2Model (no LM head): base keys unprefixed, adapter keys "
             "base_model.model.h.N...; judged as GPT2Model (hidden states)",
        lora=dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8),
        base_layout="gpt2model",
    ),
    "real-seqcls": dict(
        desc="real adapter gpt2-classification-peft (SEQ_CLS, r=8, alpha 32, targets [c_proj, c_attn], "
             "score.weight [2,768]) on a seeded random GPT-2-124M base (GPT2LMHeadModel checkpoint, f32)",
        real="gpt2-classification-peft",
    ),
    "real-seqcls-extra-targets": dict(
        desc="real adapter peft-implementation (like real-seqcls, target_modules also lists q_proj/v_proj that "
             "match nothing in GPT-2); shares real-seqcls' base",
        real="peft-implementation",
    ),
}

REAL_BASE_SEED = 20240124
UNIT_TEST_CASES = ["attn-mlp", "rank-alpha-pattern", "rslora"]


def log(msg: str) -> None:
    print(f"peft_cases: {msg}", file=sys.stderr, flush=True)


def seed_of(name: str, salt: str) -> int:
    return zlib.crc32(f"{name}/{salt}".encode()) & 0x7FFFFFFF


def real_peft_dir() -> Path:
    """`../shared/real-peft` relative to the repo root if present, else the committed copy."""
    shared = REPO_ROOT.parent / "shared" / "real-peft"
    if (shared / "gpt2-classification-peft" / "adapter_model.safetensors").is_file():
        return shared
    return REPO_ROOT / "packages" / "core" / "test" / "data" / "real-peft"


def versions() -> dict:
    import peft
    import safetensors
    import torch
    import transformers
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
    }


def script_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def lora_module_table(peft_model) -> dict:
    """How PEFT resolved each LoRA module: r, alpha, scale, layer kind, base weight shape."""
    from peft.tuners.lora import LoraLayer
    out = {}
    for name, mod in peft_model.named_modules():
        if not isinstance(mod, LoraLayer) or "default" not in getattr(mod, "r", {}):
            continue
        path = name.removeprefix("base_model.model.")
        base = mod.get_base_layer()
        out[path] = {
            "r": int(mod.r["default"]),
            "alpha": mod.lora_alpha["default"],
            "scale": float(mod.scaling["default"]),
            "kind": type(base).__name__,
            "fan_in_fan_out": bool(getattr(mod, "fan_in_fan_out", False)),
            "base_weight_shape": list(base.weight.shape),
        }
    return dict(sorted(out.items()))


def strip_adapter_prefix(adapter_dir: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = adapter_dir / "adapter_model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k.removeprefix("base_model.model."): f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata=meta or {"format": "pt"})


def add_attn_bias_buffers(base_dir: Path, n_layer: int, n_positions: int) -> None:
    """Adds the Hub gpt2 checkpoint's h.N.attn.bias causal masks (F32 [1,1,P,P])."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = base_dir / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    mask = torch.tril(torch.ones(n_positions, n_positions, dtype=torch.float32)).view(1, 1, n_positions, n_positions)
    for i in range(n_layer):
        tensors[f"h.{i}.attn.bias"] = mask.clone()
    save_file(tensors, str(path), metadata=meta or {"format": "pt"})


def copy_missing_files(src: Path, dst: Path) -> list[str]:
    """Copies files of src that dst lacks (other than weights), as a merger must carry them."""
    copied = []
    for p in sorted(src.iterdir()):
        if p.is_file() and not p.name.endswith(".safetensors") and not p.name.endswith(".index.json"):
            if not (dst / p.name).exists():
                shutil.copy2(p, dst / p.name)
                copied.append(p.name)
    return copied


def write_tiny_case(name: str, spec: dict, case_dir: Path, size: str) -> dict:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

    dims = SIZES[size]
    layout = spec.get("base_layout", "lm")  # lm | hub | gpt2model
    base_dtype = getattr(torch, spec.get("base_dtype", "float32"))
    model_cls = GPT2Model if layout == "gpt2model" else GPT2LMHeadModel
    base_dir, adapter_dir, expected_dir = case_dir / "base", case_dir / "adapter", case_dir / "expected"

    base_seed, adapter_seed = seed_of(name, "base"), seed_of(name, "adapter")
    torch.manual_seed(base_seed)
    model = model_cls(GPT2Config(**dims)).eval()
    # f16/bf16: round once, then build the adapter on the rounded weights upcast to f32 (exact).
    model = model.to(base_dtype).to(torch.float32)

    # --- base/
    to_save = model.to(base_dtype) if base_dtype != torch.float32 else model
    if layout == "hub":
        to_save.transformer.save_pretrained(base_dir)
        cfg = json.loads((base_dir / "config.json").read_text())
        cfg["architectures"] = ["GPT2LMHeadModel"]
        (base_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        add_attn_bias_buffers(base_dir, dims["n_layer"], dims["n_positions"])
        if hasattr(to_save, "generation_config") and to_save.generation_config is not None:
            to_save.generation_config.save_pretrained(base_dir)
    else:
        to_save.save_pretrained(base_dir)
    model = model.to(torch.float32)

    # --- adapter/ (REAL PEFT)
    torch.manual_seed(adapter_seed)
    lora_kwargs = dict(spec["lora"])
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(**lora_kwargs, init_lora_weights=False))
    created_table = lora_module_table(peft_model)
    peft_model.save_pretrained(adapter_dir)

    # --- expected/: reload everything from disk as a user would, merge in f32, round once.
    reloaded_base = model_cls.from_pretrained(base_dir, dtype=torch.float32).eval()
    reloaded = PeftModel.from_pretrained(reloaded_base, adapter_dir).eval()
    table = lora_module_table(reloaded)
    merged = reloaded.merge_and_unload().to(base_dtype)
    # Stripped only now: PeftModel.from_pretrained (0.21.0) does NOT load prefix-less keys (it warns
    # "Found missing adapter keys" and keeps the initial LoRA weights); transformers' load_adapter does.
    if spec.get("strip_adapter_prefix"):
        strip_adapter_prefix(adapter_dir)
    if layout == "hub":
        merged.transformer.save_pretrained(expected_dir)
        shutil.copy2(base_dir / "config.json", expected_dir / "config.json")
    else:
        merged.save_pretrained(expected_dir)
    copied = copy_missing_files(base_dir, expected_dir)

    notes = []
    if table != created_table:
        notes.append("PEFT resolved some modules differently after reload than at creation; expected/ follows the reload")
    return {
        "model_class": model_cls.__name__,
        "base_layout": {"lm": "prefixed", "hub": "unprefixed", "gpt2model": "unprefixed"}[layout],
        "base_dtype": str(base_dtype).removeprefix("torch."),
        "adapter_key_prefix": "" if spec.get("strip_adapter_prefix") else "base_model.model.",
        "tied_embeddings_untouched": True,
        "gpt2_config": dims,
        "seeds": {"base": base_seed, "adapter": adapter_seed},
        "lora_config": {**lora_kwargs, "init_lora_weights": False},
        "lora_modules": table,
        "lora_modules_at_creation": created_table if table != created_table else None,
        "expected_extra_files_copied_from_base": copied,
        "notes": notes,
    }


def write_real_case(name: str, spec: dict, case_dir: Path, shared_base: Path | None) -> tuple[dict, Path]:
    import torch
    from peft import PeftModel
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    src = real_peft_dir() / spec["real"]
    base_dir, adapter_dir, expected_dir = case_dir / "base", case_dir / "adapter", case_dir / "expected"

    if shared_base is not None and (shared_base / "model.safetensors").is_file():
        # Same seeded 124M base for every real case: link it instead of writing 500 MB again.
        os.symlink(os.path.relpath(shared_base, case_dir), base_dir)
    else:
        torch.manual_seed(REAL_BASE_SEED)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(base_dir)
        shared_base = base_dir
    adapter_dir.mkdir(parents=True)
    for f in ("adapter_config.json", "adapter_model.safetensors", "LICENSE"):
        if (src / f).is_file():
            shutil.copyfile(src / f, adapter_dir / f)

    seqcls = GPT2ForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32).eval()
    reloaded = PeftModel.from_pretrained(seqcls, adapter_dir).eval()
    table = lora_module_table(reloaded)
    merged = reloaded.merge_and_unload()
    merged.save_pretrained(expected_dir)
    copied = copy_missing_files(base_dir, expected_dir)
    return {
        "model_class": "GPT2ForSequenceClassification",
        "base_layout": "prefixed",
        "base_dtype": "float32",
        "adapter_key_prefix": "base_model.model.",
        "tied_embeddings_untouched": True,
        "gpt2_config": "GPT2Config() defaults (124M: n_embd 768, n_layer 12, vocab 50257)",
        "seeds": {"base": REAL_BASE_SEED},
        "adapter_source": f"{spec['real']} (copied unchanged, with its LICENSE, from {src})",
        "lora_config": json.loads((adapter_dir / "adapter_config.json").read_text()),
        "lora_modules": table,
        "expected_extra_files_copied_from_base": copied,
        "notes": ["expected/ is PeftModel(GPT2ForSequenceClassification).merge_and_unload().save_pretrained: "
                  "transformer.* plus score.weight, config architectures GPT2ForSequenceClassification"],
    }, shared_base


def write_case(name: str, out: Path, size: str, force: bool, shared_base: Path | None = None) -> tuple[dict, Path | None]:
    spec = CASES[name]
    case_dir = out / name
    stamp = {"script": script_digest(), "size": size, "versions": versions()}
    case_json = case_dir / "case.json"
    if not force and case_json.is_file():
        try:
            old = json.loads(case_json.read_text())
            if old.get("stamp") == stamp:
                return old, (case_dir / "base").resolve() if "real" in spec else shared_base
        except json.JSONDecodeError:
            pass
    if case_dir.is_symlink() or case_dir.is_file():
        case_dir.unlink()
    elif case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    t0 = time.time()
    if "real" in spec:
        info, shared_base = write_real_case(name, spec, case_dir, shared_base)
    else:
        info = write_tiny_case(name, spec, case_dir, size)
    info = {"name": name, "description": spec["desc"], **info,
            "generated_by": f"scripts/interop/peft_cases.py (size={size})", "stamp": stamp}
    case_json.write_text(json.dumps(info, indent=2) + "\n")
    log(f"{name}: written in {time.time() - t0:.1f} s")
    return info, shared_base


UNIT_README = """# PEFT-made test data for the TypeScript unit tests

Written by real torch / transformers / PEFT, not by lorafuse. Regenerate (deterministic, seeded) with:

```sh
node scripts/interop/setup-venv.mjs
.venv-interop/bin/python scripts/interop/peft_cases.py --unit-test-data packages/core/test/data/peft
```

Library versions used: {versions}.

Base models: `GPT2LMHeadModel(GPT2Config({dims}))`, seeded per case (seeds in `case.json`),
saved with `save_pretrained` (so `transformer.`-prefixed keys, F32, tied: no `lm_head.weight`).

| case | LoraConfig (always with `init_lora_weights=False`) |
|---|---|
{rows}

Each `<case>/` holds:

- `base/`: `config.json`, `generation_config.json`, `model.safetensors`.
- `adapter/`: `adapter_config.json`, `adapter_model.safetensors`, written by
  `get_peft_model(model, LoraConfig(...)).save_pretrained(...)` (PEFT's generated model card `README.md` is deleted).
- `expected/`: `PeftModel.from_pretrained(<base reloaded as f32>, adapter/).merge_and_unload().save_pretrained(...)`:
  PEFT's own merge. It is valid ground truth here because no case touches the tied `wte`/`lm_head` pair
  (SPEC §4); PEFT's merge matches the unmerged model to float32 rounding.
- `case.json`: the config used, the seeds, and `lora_modules`: how PEFT resolved each LoRA module after
  reloading the adapter (`r`, `alpha`, `scale`, base layer kind, base weight shape `[in, out]` for Conv1D).

The interop suite (`node scripts/interop/run.mjs`) generates more cases, larger, into `.interop-work/`.
"""


def write_unit_test_data(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    infos = []
    for name in UNIT_TEST_CASES:
        info, _ = write_case(name, out, "unit", force=True)
        # PEFT's generated model card says nothing about the data; keep the committed set small.
        (out / name / "adapter" / "README.md").unlink(missing_ok=True)
        # The stamp (script digest) is for the interop cache only; keep committed files stable.
        info.pop("stamp", None)
        (out / name / "case.json").write_text(json.dumps(info, indent=2) + "\n")
        infos.append(info)
    v = versions()
    rows = "\n".join(f"| `{i['name']}` | `{json.dumps({k: x for k, x in i['lora_config'].items() if k != 'init_lora_weights'})}` |"
                     for i in infos)
    (out / "README.md").write_text(UNIT_README.format(
        versions=", ".join(f"{k} {x}" for k, x in v.items()),
        dims=", ".join(f"{k}={x}" for k, x in SIZES["unit"].items()),
        rows=rows))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"unit test data: {total} bytes in {out}")


def main() -> int:
    # PEFT holds target_modules in a set, so its order in adapter_config.json follows string hashing:
    # pin the hash seed so reruns write identical bytes.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--force", action="store_true", help="rewrite cases whose stamp matches")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--unit-test-data", type=Path, metavar="DIR")
    args = ap.parse_args()

    if args.list:
        for name, spec in CASES.items():
            print(f"{name}\t{spec['desc']}")
        return 0

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import warnings
    warnings.filterwarnings("ignore")

    if args.unit_test_data:
        write_unit_test_data(args.unit_test_data)
        return 0
    if not args.out:
        ap.error("--out is required")
    names = [c for c in (args.cases.split(",") if args.cases else CASES) if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {unknown}; see --list")
    args.out.mkdir(parents=True, exist_ok=True)
    shared_base = None
    t0 = time.time()
    for name in names:
        _, shared_base = write_case(name, args.out, args.size, args.force, shared_base)
    print(json.dumps({"out": str(args.out), "cases": names, "seconds": round(time.time() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
