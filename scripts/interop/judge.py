#!/usr/bin/env python3
"""Judges a merged GPT-2 checkpoint against real PEFT, transformers and torch.

Usage:
  python judge.py <case-dir> <merged-dir> [<case-dir> <merged-dir> ...]

<case-dir> is one written by peft_cases.py (base/, adapter/, case.json). For each pair, one JSON line is
printed on stdout: {"case", "merged", "pass", "failures", "notes", "metrics", "seconds"}. Logs go to stderr.
Exit status: 0 when every pair passes, 1 when any fails, 2 on a usage error.

What is checked (loaded by transformers, the output must compute what PEFT computes unmerged):
  files     no adapter_config.json / adapter_model.* in the output; every other non-weight file of base/
            present with the same bytes; safetensors metadata format "pt".
  keys      no `lora_` key; every base tensor present (h.N.attn.bias / masked_bias buffers only noted);
            no unexpected extra tensors.
  weights   a float64 reference computed here with torch from the adapter files alone:
              W + s·(B@A)ᵀ for Conv1D (c_attn, c_proj, c_fc, q_attn), W + s·(B@A) for Linear,
              W + s·(B@A)ᵀ for Embedding (lora_embedding_A/B), W + s·(B@A) for a target_parameters weight
              (PEFT's ParamWrapper: the parameter as stored), bias += s·lora_B.bias (only with
              lora_bias: true; PEFT ignores the tensor otherwise);
              DoRA (use_dora, `<m>.lora_magnitude_vector`): then m / ||W + delta|| per output feature times
              W + delta (norm over the input dim: per column of Conv1D [in, out] and Embedding [vocab, dim],
              per row of Linear [out, in]);
              non-LoRA adapter tensors replace the base tensor (`.base_layer.` and `.modules_to_save.` dropped
              from the name; `<m>.token_adapter.base_layer.weight`, a resized vocabulary's embedding under
              a trainable-tokens wrapper, is the matrix the token rows go into; `<m>.original_module.*`, which PEFT's save_embedding_layers also writes for a
              modules_to_save wrapper, is ignored as PEFT's forward ignores it);
              s = alpha/r (alpha/√r with use_rslora), alpha via alpha_pattern (first `(.*\\.)?(key)$` match,
              file order), r = A.shape[0] cross-checked with rank_pattern;
              trainable tokens (`<m>.token_adapter.trainable_tokens_delta`): row k of the saved
              tensor replaces row indices[k] of the module's matrix (PEFT's index_copy: full values, not
              deltas), indices from adapter_config.json's trainable_token_indices (a list: the input
              embedding wte; a dict: the first key, in file order, that the module path ends with). In a tied
              base PEFT ties lm_head's token adapter to wte's unless lm_head has rows of its own: then the
              effective lm_head also gets wte's rows. Token rows need no arithmetic, so a tensor changed only
              by them must be exact: the reference rounded to the dtype, bit for bit (rows at wrong indices,
              in the wrong order or added as deltas are named by row).
            f32: |merged − ref| ≤ 1e-6 + 1e-5·|ref|. f16/bf16: |merged − ref| ≤ 1 ulp of the dtype at ref.
            Untouched tensors: byte-identical to base. Dtypes unchanged.
  tie       lm_head.weight written separately with tie_word_embeddings false exactly when the effective
            wte and lm_head differ; otherwise the tie is kept (no lm_head.weight, tie true or absent). In a
            tied base the effective lm_head is the base wte unless the adapter changes lm_head (LoRA on the
            Linear lm_head: base wte + s·B@A; a full lm_head tensor), and the effective wte the base wte unless
            the adapter changes wte: each use of the shared matrix is judged on its own.
  vocab     config.json vocab_size = rows of the effective wte (a resized vocabulary arrives as full
            wte/lm_head tensors in the adapter; the unmerged reference resizes the base before loading it).
  config    every base config.json field kept, except vocab_size, tie_word_embeddings and (for a score head)
            architectures / num_labels / id2label / label2id.
  model     the output loads with transformers (the case's class, f32) with no missing/mismatched keys;
            its logits and last hidden state on a fixed batch (with every row a resize added) match
            PeftModel.from_pretrained(base, adapter) unmerged, under the transformers this judge runs with
            (run.mjs runs it with v5, and with v4 for the tied cases: v4 re-ties a stored lm_head when
            config.json says tied, v5 keeps it). The batch holds every trainable token's id (second sequence),
            so that changed input-embedding rows are used: atol = rtol = 1e-4 for f32 bases; for f16/bf16 bases the
            tolerance is derived from the dtype and printed (see `logit_tolerance`).
  judge     self-checks that PEFT read the adapter as the files say (tensors, LoRA module set, scaling,
            get_delta_weight vs this judge's float64 delta, trainable-token wrappers: modules, indices, which
            is tied to which), so that the reference itself is trustworthy.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

F32_ATOL, F32_RTOL = 1e-6, 1e-5          # f32 merge vs float64 reference, per element
LOGIT_ATOL = LOGIT_RTOL = 1e-4            # what PEFT's own tests allow between merged and unmerged logits
CONV1D_NAMES = {"c_attn", "c_proj", "c_fc", "q_attn"}
EMBEDDING_NAMES = {"wte", "wpe"}
BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias", ".crossattention.bias", ".crossattention.masked_bias")
MANTISSA_BITS = {torch.float16: 10, torch.bfloat16: 7, torch.float32: 23}
CONFIG_ALWAYS_CHANGEABLE = {"vocab_size", "tie_word_embeddings"}
CONFIG_HEAD_CHANGEABLE = {"architectures", "num_labels", "id2label", "label2id"}


def log(msg: str) -> None:
    print(f"judge: {msg}", file=sys.stderr, flush=True)


def canon(key: str) -> str:
    """Tensor name without the GPT2LMHeadModel `transformer.` prefix (Hub and GPT2Model layouts lack it)."""
    return key[len("transformer."):] if key.startswith("transformer.") else key


class Verdict:
    def __init__(self, case: str, merged: Path):
        self.case, self.merged = case, merged
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.metrics: dict = {}

    def fail(self, msg: str) -> None:
        self.failures.append(msg)

    def note(self, msg: str) -> None:
        self.notes.append(msg)


# ----------------------------------------------------------------------------------------------- files

def weight_files(d: Path) -> list[Path]:
    index = d / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [d / f for f in sorted(set(weight_map.values()))]
    if (d / "model.safetensors").is_file():
        return [d / "model.safetensors"]
    return []


def read_checkpoint(d: Path, v: Verdict | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint dir (single file or sharded), validated by the safetensors reader."""
    tensors: dict[str, torch.Tensor] = {}
    files = weight_files(d)
    if not files:
        raise FileNotFoundError(f"{d}: no model.safetensors or model.safetensors.index.json")
    for f in files:
        with safe_open(str(f), "pt") as sf:
            meta = sf.metadata()
            if v is not None:
                if meta is None:
                    v.note(f"{f.name}: no __metadata__ (transformers accepts that)")
                elif meta.get("format") not in ("pt", "tf", "flax", "mlx"):
                    v.fail(f"{f.name}: __metadata__.format is {meta.get('format')!r}; transformers refuses it")
            for k in sf.keys():
                if k in tensors:
                    raise ValueError(f"{d}: tensor {k} appears in two shards")
                tensors[k] = sf.get_tensor(k)
    return tensors


def by_canon(tensors: dict[str, torch.Tensor], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k in tensors:
        c = canon(k)
        if c in out:
            raise ValueError(f"{what}: both {out[c]} and {k} name the same tensor")
        out[c] = k
    return out


def same_bytes(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def check_files(case_dir: Path, merged: Path, v: Verdict) -> None:
    names = {p.name for p in merged.iterdir()}
    for bad in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if bad in names:
            v.fail(f"output contains {bad} (transformers would apply the adapter again on load, peft issue 1381)")
    base = case_dir / "base"
    for p in sorted(base.iterdir()):
        if not p.is_file() or p.name == "config.json" or p.name.endswith((".safetensors", ".index.json", ".bin")):
            continue
        q = merged / p.name
        if not q.is_file():
            v.fail(f"base file {p.name} not carried to the output")
        elif q.read_bytes() != p.read_bytes():
            v.fail(f"base file {p.name} changed in the output")


def check_shards(case_dir: Path, merged: Path, max_shard_size: str, v: Verdict) -> None:
    """A sharded output must be split exactly as transformers' save_pretrained(max_shard_size=...) split
    expected/ (PEFT's merge of the same tensors): the same shard files, and an index.json that is
    byte for byte transformers' (weight_map, metadata.total_size, metadata.total_parameters)."""
    index_name = "model.safetensors.index.json"
    want_index = case_dir / "expected" / index_name
    got_index = merged / index_name
    if not want_index.is_file():
        v.fail(f"case: expected/ has no {index_name}; the case's max_shard_size {max_shard_size} does not shard")
        return
    if not got_index.is_file():
        v.fail(f"output has no {index_name} (max_shard_size {max_shard_size})")
        return
    if (merged / "model.safetensors").exists():
        v.fail("sharded output also holds model.safetensors (transformers would load that instead of the shards)")
    want, got = json.loads(want_index.read_text()), json.loads(got_index.read_text())
    if got.get("metadata") != want.get("metadata"):
        v.fail(f"index metadata {got.get('metadata')} != transformers' {want.get('metadata')}")
    wm_got, wm_want = got.get("weight_map", {}), want.get("weight_map", {})
    wrong = sorted(k for k in set(wm_got) | set(wm_want) if wm_got.get(k) != wm_want.get(k))
    if wrong:
        v.fail(f"index weight_map differs from transformers' for {len(wrong)} tensor(s), e.g. "
               + "; ".join(f"{k}: {wm_got.get(k)} vs {wm_want.get(k)}" for k in wrong[:3]))
    elif got_index.read_bytes() != want_index.read_bytes():
        v.fail("index.json holds transformers' content but not its text (json.dumps(indent=2, sort_keys=True) + newline)")
    shards_got = sorted(p.name for p in merged.glob("model-*-of-*.safetensors"))
    shards_want = sorted(p.name for p in (case_dir / "expected").glob("model-*-of-*.safetensors"))
    if shards_got != shards_want:
        v.fail(f"shard files {shards_got} != transformers' {shards_want}")
    v.metrics["shards"] = {"max_shard_size": max_shard_size, "files": len(shards_got),
                           "total_size": got.get("metadata", {}).get("total_size")}


def check_config(case_dir: Path, merged: Path, has_head_replacement: bool, v: Verdict) -> dict:
    base_cfg = json.loads((case_dir / "base" / "config.json").read_text())
    try:
        out_cfg = json.loads((merged / "config.json").read_text())
    except FileNotFoundError:
        v.fail("output has no config.json")
        return {}
    allowed = CONFIG_ALWAYS_CHANGEABLE | (CONFIG_HEAD_CHANGEABLE if has_head_replacement else set())
    for k, val in base_cfg.items():
        if k not in out_cfg:
            if k not in allowed:
                v.fail(f"config.json lost field {k!r}")
        elif k == "pad_token_id" and val is None and out_cfg[k] is not None:
            # A sequence classifier without a pad token gets eos as its pad (transformers refuses batches
            # larger than one otherwise); anything else would be a wrong change.
            arch = (out_cfg.get("architectures") or [None])[0]
            if arch != "GPT2ForSequenceClassification" or out_cfg[k] != out_cfg.get("eos_token_id"):
                v.fail(f"config.json field 'pad_token_id' set to {out_cfg[k]!r} on a {arch} (want eos on a classifier only)")
            else:
                v.note(f"config.json pad_token_id set to eos ({out_cfg[k]}) for the classifier")
        elif out_cfg[k] != val and k not in allowed:
            v.fail(f"config.json field {k!r} changed: {val!r} -> {out_cfg[k]!r}")
    added = sorted(set(out_cfg) - set(base_cfg))
    if added:
        v.note(f"config.json added fields {added}")
    return out_cfg


# ----------------------------------------------------------------------------------------------- math

def twin_or(case_dir: Path, name: str) -> Path:
    """`<name>-safetensors/` when the case has it (its `<name>/` holds the same weights as .bin), else `<name>/`."""
    twin = case_dir / f"{name}-safetensors"
    return twin if twin.is_dir() else case_dir / name


def read_adapter(adapter_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return cfg, tensors


def pattern_key(keys, name: str) -> str:
    """PEFT's get_pattern_key: first key (in file order) with re.match(rf"(.*\\.)?({key})$", name)."""
    for key in keys:
        if re.match(rf"(.*\.)?({key})$", name):
            return key
    return name


def lora_scale(cfg: dict, module: str, r_from_shape: int, v: Verdict) -> float:
    rank_pattern = cfg.get("rank_pattern") or {}
    alpha_pattern = cfg.get("alpha_pattern") or {}
    r_cfg = rank_pattern.get(pattern_key(rank_pattern.keys(), module), cfg.get("r", 8))
    if r_cfg != r_from_shape:
        v.fail(f"judge: {module}: rank from config {r_cfg} != lora_A rows {r_from_shape}")
    alpha = alpha_pattern.get(pattern_key(alpha_pattern.keys(), module), cfg.get("lora_alpha", 8))
    r = r_from_shape
    return alpha / math.sqrt(r) if cfg.get("use_rslora", False) else alpha / r


class Reference:
    """The float64 merge computed from base tensors and adapter files (no PEFT involved)."""

    def __init__(self, base: dict[str, torch.Tensor], adapter_cfg: dict, adapter: dict[str, torch.Tensor], v: Verdict,
                 base_tied: bool = True):
        self.base = base
        self.base_canon = by_canon(base, "base")
        self.scales: dict[str, float] = {}             # module path (as in the adapter) -> scale
        self.deltas: dict[str, torch.Tensor] = {}      # canonical weight/bias name -> float64 delta (base layout)
        self.replacements: dict[str, torch.Tensor] = {}  # canonical name -> full tensor
        self.module_of: dict[str, str] = {}            # canonical weight name -> module path
        # canonical weight name -> (indices, rows [len(indices), dim], module path whose rows they are)
        self.token_rows: dict[str, tuple[list[int], torch.Tensor, str]] = {}

        stripped = {k.removeprefix("base_model.model."): t for k, t in adapter.items()}
        # DoRA (use_dora): canonical weight name -> (magnitude [features], dim the norm runs over in base layout).
        self.dora: dict[str, tuple[torch.Tensor, int]] = {}
        # Several adapters with DoRA among them (set by reference_of): canonical weight name -> the adapters'
        # (weighted delta, DoRA (magnitude, dim) or None), in adapter order.
        self.sequence: dict[str, list[tuple[torch.Tensor, tuple[torch.Tensor, int] | None]]] = {}
        use_dora = bool(adapter_cfg.get("use_dora", False))
        for key in stripped:
            if key.endswith("lora_magnitude_vector") and not use_dora:
                raise NotImplementedError(f"judge: DoRA magnitude vector {key} without use_dora")
            if "token_adapter" in key and not key.endswith((".token_adapter.trainable_tokens_delta", ".token_adapter.base_layer.weight")):
                raise NotImplementedError(f"judge does not know the trainable-tokens tensor {key}")
        # target_parameters (PEFT's ParamWrapper): in = shape[1], out = shape[0] of the parameter as stored, so
        # the delta B@A is added untransposed; rank/alpha patterns match "<module>.<param>".
        target_params = adapter_cfg.get("target_parameters") or []

        def wrapped(module: str) -> bool:
            key = f"{module}.weight"
            return any(key == t or key.endswith("." + t) for t in target_params)
        for key, A in stripped.items():
            m = re.fullmatch(r"(.+)\.(lora_A\.weight|lora_embedding_A)", key)
            if not m:
                continue
            module, kind = m.group(1), m.group(2)
            B = stripped[f"{module}.lora_B.weight" if kind == "lora_A.weight" else f"{module}.lora_embedding_B"]
            s = lora_scale(adapter_cfg, f"{module}.weight" if wrapped(module) else module, A.shape[0], v)
            self.scales[module] = s
            ba = B.double() @ A.double()
            last = module.rsplit(".", 1)[-1]
            if wrapped(module):
                delta = ba * s            # the parameter as stored
            elif kind == "lora_embedding_A" or last in CONV1D_NAMES:
                delta = ba.T * s          # Conv1D weight is [in, out]; embedding is [vocab, dim]
            else:
                delta = ba * s            # nn.Linear weight is [out, in]
            wname = canon(module) + ".weight"
            self.deltas[wname] = self.deltas.get(wname, 0) + delta
            self.module_of[wname] = module
            if use_dora:
                mag = stripped.get(f"{module}.lora_magnitude_vector")
                if mag is None:
                    v.fail(f"judge: use_dora but {module}.lora_magnitude_vector is missing")
                else:
                    # One L2 norm per output feature: over the rows (dim 0) of a Conv1D [in, out] or an
                    # Embedding [vocab, dim]; over the columns (dim 1) of a Linear [out, in].
                    self.dora[wname] = (mag.double(), 0 if (kind == "lora_embedding_A" or last in CONV1D_NAMES) else 1)
            bias = stripped.get(f"{module}.lora_B.bias")
            # With lora_bias false PEFT builds lora_B without a bias and ignores a saved one.
            if bias is not None and adapter_cfg.get("lora_bias", False):
                bname = canon(module) + ".bias"
                self.deltas[bname] = self.deltas.get(bname, 0) + bias.double() * s
        # Full tensors. PEFT's save_embedding_layers (auto: a resized vocabulary, or lm_head among the targets)
        # saves every state-dict entry under the embedding modules, so a modules_to_save wrapper there also
        # contributes `<m>.modules_to_save.weight` (the trained copy again, adapter name stripped) and
        # `<m>.original_module.weight` (the wrapped base module, unused by the forward while the adapter is active).
        self.ignored: list[str] = []
        self.token_bases: set[str] = set()  # canonical names whose replacement is a token adapter's base layer
        for key, t in stripped.items():
            if ".lora_" in key or key.startswith("lora_") or (".token_adapter." in key and not key.endswith(".token_adapter.base_layer.weight")):
                continue
            if key.endswith(".token_adapter.base_layer.weight"):
                # The trainable-tokens wrapper's base layer, saved for a resized vocabulary: the embedding itself.
                key = key.replace(".token_adapter.base_layer.", ".")
                self.token_bases.add(canon(key))
            if ".original_module." in key:
                self.ignored.append(key)
                continue
            name = canon(key.replace(".base_layer.", ".").replace(".modules_to_save.", "."))
            if name in self.replacements and not same_bytes(self.replacements[name], t):
                v.fail(f"judge: adapter tensors for {name} disagree ({key} vs another key for the same module)")
            self.replacements[name] = t
        if self.ignored:
            v.note(f"adapter tensors ignored as PEFT's forward ignores them: {sorted(self.ignored)}")

        # Trainable tokens: the saved rows are full values. The indices live only in adapter_config.json.
        tti = adapter_cfg.get("trainable_token_indices")
        for key, rows in stripped.items():
            m = re.fullmatch(r"(.+)\.token_adapter\.trainable_tokens_delta", key)
            if not m:
                continue
            module = m.group(1)
            if tti is None:
                v.fail(f"judge: {key} in the adapter but adapter_config.json has no trainable_token_indices")
                continue
            if isinstance(tti, dict):
                # PEFT's _set_trainable: key.endswith(target) for each target of the dict, in its order.
                hit = next((k for k in tti if module.endswith(k)), None)
                indices = list(tti[hit]) if hit is not None else None
            else:
                indices = list(tti) if canon(module) == "wte" else None  # list form: the input embedding
                if indices is None and base_tied and canon(module) == "lm_head":
                    # The tied lm_head token adapter (tied to wte's), saved as a copy along with a resized
                    # vocabulary: it must hold wte's rows; the tie rule below gives lm_head those rows.
                    wte_rows = next((r for k2, r in stripped.items() if re.fullmatch(r"(.+\.)?wte\.token_adapter\.trainable_tokens_delta", k2)), None)
                    if wte_rows is None or not same_bytes(wte_rows, rows):
                        v.fail(f"judge: {key} is not a copy of wte's trainable-token rows")
                    continue
            if indices is None:
                v.fail(f"judge: no trainable_token_indices in adapter_config.json for {module} ({tti!r})")
                continue
            name = canon(module) + ".weight"
            if rows.ndim != 2 or rows.shape[0] != len(indices) or len(set(indices)) != len(indices):
                v.fail(f"judge: {key} {list(rows.shape)} does not fit the indices {indices}")
                continue
            if name in self.deltas or (name in self.replacements and name not in self.token_bases):
                raise NotImplementedError(f"judge: {name} has trainable-token rows and LoRA factors or a full tensor")
            self.token_rows[name] = (indices, rows, module)
        # PEFT ties lm_head's token adapter to wte's in a tied base (added in peft PR 2399), unless lm_head has rows
        # of its own (dict form with other indices: PEFT wraps it separately).
        if base_tied and "wte.weight" in self.token_rows and "lm_head.weight" not in self.token_rows:
            indices, rows, module = self.token_rows["wte.weight"]
            self.token_rows["lm_head.weight"] = (indices, rows, module + " (lm_head tied to it)")

    def basis(self, name: str) -> torch.Tensor | None:
        """What a delta is added to: the adapter's replacement, else the base tensor (float64).
        A tied checkpoint has no lm_head.weight: its lm_head is the *base* wte (PEFT wraps wte, the tie
        still points at the original parameter)."""
        if name in self.replacements:
            return self.replacements[name].double()
        if name in self.base_canon:
            return self.base[self.base_canon[name]].double()
        if name == "lm_head.weight" and "wte.weight" in self.base_canon:
            return self.base[self.base_canon["wte.weight"]].double()
        return None

    def expected(self, name: str) -> torch.Tensor | None:
        """Float64 reference for canonical `name`, or None when the tensor must be byte-identical."""
        if name not in self.replacements and name not in self.deltas and name not in self.token_rows:
            return None
        b = self.basis(name)
        if b is None:
            raise ValueError(f"adapter changes {name}, which the base does not have")
        if name in self.token_rows:
            indices, rows, _ = self.token_rows[name]
            if rows.shape[1] != b.shape[1] or max(indices) >= b.shape[0]:
                raise ValueError(f"trainable-token rows {list(rows.shape)} at {indices} do not fit {name} {list(b.shape)}")
            return b.index_copy(0, torch.tensor(indices), rows.double())
        if name in self.sequence:
            # In adapter order: a LoRA adapter adds its delta; a DoRA one scales everything so far plus its
            # delta by m / ||W + its delta||, the norm from the unmerged weight W (PEFT's forward and 0.21's merge).
            merged = b
            for delta, dora in self.sequence[name]:
                if dora is None:
                    merged = merged + delta
                else:
                    mag, dim = dora
                    factor = (mag / torch.linalg.norm(b + delta, dim=dim)).unsqueeze(dim)
                    merged = factor * (merged + delta)
            return merged
        merged = b + self.deltas[name] if name in self.deltas else b
        if name in self.dora:
            # DoRA: W' = m / ||W + dW|| * (W + dW), the norm from the unmerged weight plus this delta.
            mag, dim = self.dora[name]
            norm = torch.linalg.norm(merged, dim=dim)
            factor = (mag / norm).unsqueeze(dim)
            merged = factor * merged
        return merged

    def exact_rows(self, name: str) -> list[int] | None:
        """The trainable-token indices of `name` when its reference is exact (rows copied into the base or a full
        tensor, no LoRA arithmetic), else None."""
        if name in self.token_rows and name not in self.deltas:
            return self.token_rows[name][0]
        return None

    def effective_embeddings(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(wte, lm_head) as the unmerged model sees them, float64 (None when absent)."""
        wte = self.expected("wte.weight")
        if wte is None:
            wte = self.basis("wte.weight")
        lm = self.expected("lm_head.weight")
        if lm is None:
            lm = self.basis("lm_head.weight")
        return wte, lm


def ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Spacing of `dtype` at |x| (x float64), subnormals included."""
    fi = torch.finfo(dtype)
    _, e = torch.frexp(x.abs())
    exp = torch.clamp(e.to(torch.float64) - 1, min=math.log2(fi.tiny))
    return torch.pow(2.0, exp - MANTISSA_BITS[dtype])


def compare_weight(name: str, got: torch.Tensor, ref64: torch.Tensor, dtype: torch.dtype, v: Verdict, stats: dict,
                   token_indices: list[int] | None = None) -> None:
    """`token_indices`: the tensor is the base (or a full replacement) with trainable-token rows copied in and no
    arithmetic, so it must equal the reference rounded to `dtype` bit for bit; failures name the rows."""
    if got.shape != ref64.shape:
        v.fail(f"{name}: shape {list(got.shape)} != expected {list(ref64.shape)}")
        return
    if got.dtype != dtype:
        v.fail(f"{name}: dtype {got.dtype} != base dtype {dtype}")
        return
    if token_indices is not None:
        compare_token_rows(name, got, ref64.to(dtype), token_indices, v, stats)
        return
    g = got.double()
    err = (g - ref64).abs()
    if dtype == torch.float32:
        bound = F32_ATOL + F32_RTOL * ref64.abs()
    else:
        bound = ulp(ref64, dtype)
    stats["weights_checked"] += 1
    stats["weights_max_abs_err"] = max(stats["weights_max_abs_err"], float(err.max()) if err.numel() else 0.0)
    bad = err > bound
    if bool(bad.any()):
        i = int(torch.argmax((err - bound).flatten()))
        v.fail(f"{name}: {int(bad.sum())}/{err.numel()} elements off the float64 reference; worst at flat index {i}: "
               f"got {float(g.flatten()[i])!r}, want {float(ref64.flatten()[i])!r}, bound {float(bound.flatten()[i]):.3g}")


def compare_token_rows(name: str, got: torch.Tensor, want: torch.Tensor, indices: list[int], v: Verdict, stats: dict) -> None:
    """Bitwise row comparison of a matrix changed by trainable tokens (index_copy: no rounding anywhere)."""
    stats["weights_checked"] += 1
    stats["token_rows_checked"] = stats.get("token_rows_checked", 0) + len(indices)
    g = got.contiguous().view(torch.uint8).view(got.shape[0], -1)
    w = want.contiguous().view(torch.uint8).view(want.shape[0], -1)
    bad = [int(r) for r in torch.nonzero((g != w).any(dim=1)).flatten()]
    err = float((got.double() - want.double()).abs().max()) if got.numel() else 0.0
    stats["weights_max_abs_err"] = max(stats["weights_max_abs_err"], err)
    if not bad:
        return
    where = {i: k for k, i in enumerate(indices)}
    parts = []
    for r in bad[:6]:
        found = [j for j in range(w.shape[0]) if torch.equal(g[r], w[j])]
        label = f"trainable row {where[r]} (index {r})" if r in where else f"row {r} (not a trainable index)"
        parts.append(f"{label}: holds {'the wanted row ' + str(found[0]) if found else 'no wanted row'}, "
                     f"max |diff| {float((got[r].double() - want[r].double()).abs().max()):.3g}")
    v.fail(f"{name}: {len(bad)}/{got.shape[0]} rows differ from the base with trainable-token rows {indices} copied in "
           f"(must be bit-exact): " + "; ".join(parts))


# ----------------------------------------------------------------------------------------------- models

def token_batch(vocab: int, n_positions: int, new_vocab: int | None = None, token_ids=()) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    # vocab-1 is left out: it is GPT-2's eos/pad id, and sequence classification pools on the last non-pad.
    ids = torch.randint(0, max(vocab - 1, 1), (2, min(16, n_positions)), generator=g)
    if new_vocab is not None and new_vocab > vocab:
        # rows added by a resize, placed in the first sequence (LM heads only: no pooling on pad there)
        new = list(range(vocab, new_vocab))[: ids.shape[1] - 1]
        ids[0, 1:1 + len(new)] = torch.tensor(new)
    # trainable tokens' ids in the second sequence, so that the input embedding's changed rows are used
    tokens = sorted(set(int(i) for i in token_ids))[: ids.shape[1] - 1]
    if tokens:
        ids[1, 1:1 + len(tokens)] = torch.tensor(tokens)
    return ids


def model_classes():
    from transformers import GPT2ForSequenceClassification, GPT2ForTokenClassification, GPT2LMHeadModel, GPT2Model
    return {"GPT2LMHeadModel": GPT2LMHeadModel, "GPT2Model": GPT2Model,
            "GPT2ForSequenceClassification": GPT2ForSequenceClassification,
            "GPT2ForTokenClassification": GPT2ForTokenClassification}


def run_model(model, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    res = {"hidden": out.hidden_states[-1].float()}
    if getattr(out, "logits", None) is not None:
        res["logits"] = out.logits.float()
    return res


def resized_vocab(ref: Reference) -> int | None:
    """Row count of a vocabulary resized during training (full wte and lm_head in the adapter with more rows
    than the base), else None. A resize with only one of them saved cannot be reproduced: judge error."""
    if "wte.weight" not in ref.base_canon:
        return None
    base_wte = ref.base[ref.base_canon["wte.weight"]]
    rows = {n: int(ref.replacements[n].shape[0]) for n in ("wte.weight", "lm_head.weight") if n in ref.replacements}
    if not rows or max(rows.values()) == base_wte.shape[0]:
        return None
    if len(rows) != 2 or len(set(rows.values())) != 1:
        raise NotImplementedError(f"judge: resized vocabulary with full tensors {rows}: the new rows of the other "
                                  f"embedding are not in the adapter")
    return rows["wte.weight"]


def reference_of(case_dir: Path, case: dict, base: dict[str, torch.Tensor], v: Verdict, base_tied: bool):
    """The float64 reference of a case and its adapter tensors. A multi-adapter case (case.json
    `multi_adapter`: adapter dirs and weights) combines one Reference per adapter as PEFT's model with all of
    them active computes: every LoRA delta times its adapter's weight, summed (where a DoRA adapter trains a
    weight, the adapters apply in order, see Reference.expected); full tensors and token rows as
    saved (two adapters giving one differently is a judge error: the case has no single meaning). The adapter
    tensors returned are then the first adapter's (peft_reference is not used for such cases)."""
    multi = case.get("multi_adapter")
    if not multi:
        adapter_cfg, adapter = read_adapter(twin_or(case_dir, "adapter"))
        return Reference(base, adapter_cfg, adapter, v, base_tied=base_tied), adapter
    refs = []
    for dir_name, weight in zip(multi["adapters"], multi["weights"]):
        cfg, tensors = read_adapter(case_dir / dir_name)
        refs.append((Reference(base, cfg, tensors, v, base_tied=base_tied), float(weight), tensors))
    combined = copy.copy(refs[0][0])
    combined.deltas, combined.replacements, combined.token_rows, combined.scales = {}, {}, {}, {}
    combined.dora, combined.sequence = {}, {}
    doras = set(n for ref, _, _ in refs for n in ref.dora)
    for ref, weight, _ in refs:
        for name, delta in ref.deltas.items():
            combined.deltas[name] = combined.deltas.get(name, 0) + weight * delta
            if name in doras:
                combined.sequence.setdefault(name, []).append((weight * delta, ref.dora.get(name)))
        for name, t in ref.replacements.items():
            if name in combined.replacements and not same_bytes(combined.replacements[name], t):
                v.fail(f"judge: two adapters of the case replace {name} with different values")
            combined.replacements[name] = t
        for name, rows in ref.token_rows.items():
            if name in combined.token_rows:
                raise NotImplementedError(f"judge: trainable tokens on {name} from several adapters")
            combined.token_rows[name] = rows
    return combined, refs[0][2]


def weighted_active_model(case_dir: Path, case: dict, cls_name: str):
    """PEFT's model with every adapter of a multi-adapter case loaded and active together, each LoRA layer's
    scaling multiplied by its adapter's weight; and the adapter names with their weights."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    multi = case["multi_adapter"]
    names = [f"a{i + 1}" for i in range(len(multi["adapters"]))]
    base_model = model_classes()[cls_name].from_pretrained(case_dir / "base", dtype=torch.float32).eval()
    pm = PeftModel.from_pretrained(base_model, case_dir / multi["adapters"][0], adapter_name=names[0])
    for name, dir_name in zip(names[1:], multi["adapters"][1:]):
        pm.load_adapter(case_dir / dir_name, adapter_name=name)
    pm.base_model.set_adapter(names)
    weights = dict(zip(names, (float(w) for w in multi["weights"])))
    return pm.eval(), base_model, weights, [m for m in pm.modules() if isinstance(m, LoraLayer)]


def unmerged_reference(case_dir: Path, case: dict, cls_name: str, ref: Reference, adapter: dict, v: Verdict):
    """The unmerged PEFT model of a case: peft_reference, or for several adapters the weighted active ones,
    after checking that PEFT's Σ wᵢ·get_delta_weight equals the judge's combined float64 delta."""
    if not case.get("multi_adapter"):
        return peft_reference(case_dir, cls_name, ref, adapter, v)
    pm, base_model, weights, layers = weighted_active_model(case_dir, case, cls_name)
    worst = 0.0
    seen = set()
    for name, mod in pm.named_modules():
        if mod not in layers:
            continue
        wname = canon(name.removeprefix("base_model.model.")) + ".weight"
        seen.add(wname)
        with torch.no_grad():
            d = sum(w * mod.get_delta_weight(a).double() for a, w in weights.items() if a in mod.scaling)
        mine = ref.deltas.get(wname)
        if mine is None or d.shape != mine.shape or not torch.allclose(d, mine, atol=F32_ATOL, rtol=F32_RTOL):
            v.fail(f"judge: {wname}: PEFT's weighted sum of get_delta_weight differs from the judge's float64 delta")
        else:
            worst = max(worst, float((d - mine).abs().max()))
    if seen != set(n for n in ref.deltas if n.endswith(".weight")):
        v.fail(f"judge: PEFT holds LoRA on {sorted(seen ^ set(ref.deltas))[:6]} unlike the adapter files")
    v.metrics["judge_vs_peft_delta_max_abs"] = worst
    for mod in layers:
        for a, w in weights.items():
            if a in mod.scaling:
                mod.scaling[a] *= w
    v.note(f"unmerged reference: {len(weights)} adapters active together, weights {list(weights.values())}")
    return pm, base_model


def adapter_args(case_dir: Path, case: dict) -> list[str]:
    """The CLI arguments naming a case's adapters for verify: one --adapter, or several and --weights."""
    multi = case.get("multi_adapter")
    if not multi:
        return ["--adapter", str(case_dir / "adapter")]
    return [*(x for d in multi["adapters"] for x in ("--adapter", str(case_dir / d))),
            "--weights=" + ",".join(str(w) for w in multi["weights"])]


def peft_reference(case_dir: Path, cls_name: str, ref: Reference, adapter: dict, v: Verdict):
    """Unmerged PeftModel over the base (f32), after checking PEFT read the adapter as the files say."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict

    cls = model_classes()[cls_name]
    torch.manual_seed(0)
    base_model = cls.from_pretrained(case_dir / "base", dtype=torch.float32).eval()
    if cls_name == "GPT2ForSequenceClassification" and base_model.config.pad_token_id is None:
        base_model.config.pad_token_id = base_model.config.eos_token_id
    rows = resized_vocab(ref)
    if rows is not None:
        # PEFT needs the base resized before loading (else a size mismatch). The new rows' values do not matter here:
        # resized_vocab() only answers when the adapter holds both embeddings as full tensors.
        base_model.resize_token_embeddings(rows, mean_resizing=False)
        v.note(f"base resized to {rows} rows (resize_token_embeddings) before loading the adapter")
    if all(k.startswith("base_model.model.") for k in adapter):
        pm = PeftModel.from_pretrained(base_model, case_dir / "adapter").eval()
    else:
        # PeftModel.from_pretrained (peft 0.21.0) silently skips prefix-less keys ("Found missing adapter
        # keys" warning, LoRA left at its init); transformers' integration strips/accepts both forms.
        base_model.load_adapter(str(case_dir / "adapter"))
        pm = base_model.eval()
        v.note("adapter keys lack 'base_model.model.': unmerged reference built with transformers' load_adapter")

    def prefixed(sd):
        return {k if k.startswith("base_model.model.") else "base_model.model." + k: t for k, t in sd.items()}
    want = prefixed(adapter)
    # save_embedding_layers="auto" depends on the base path written in adapter_config.json (relative paths
    # resolve against the cwd): ask for both answers and take the one that reproduces the file's key set.
    for sel in (False, True):
        loaded = prefixed(get_peft_model_state_dict(pm, save_embedding_layers=sel))
        if set(loaded) == set(want):
            break
    if set(loaded) != set(want):
        v.fail(f"judge: PEFT's adapter state {sorted(set(loaded) ^ set(want))[:6]} differs from the file's keys")
    for k in set(loaded) & set(want):
        if not torch.equal(loaded[k].cpu(), want[k]):
            v.fail(f"judge: PEFT loaded {k} with other values than the file holds")

    injected = {}
    for name, mod in pm.named_modules():
        if isinstance(mod, LoraLayer) and "default" in getattr(mod, "scaling", {}):
            injected[name.removeprefix("base_model.model.")] = mod
    if set(injected) != set(ref.scales):
        v.fail(f"judge: PEFT injected LoRA into {sorted(set(injected) ^ set(ref.scales))[:6]} unlike the file")
    worst = 0.0
    for path, mod in injected.items():
        if path not in ref.scales:
            continue
        if not math.isclose(float(mod.scaling["default"]), ref.scales[path], rel_tol=1e-12):
            v.fail(f"judge: {path}: PEFT scaling {mod.scaling['default']} != judge scale {ref.scales[path]}")
        name = canon(path) + ".weight"
        with torch.no_grad():
            d = mod.get_delta_weight("default").double()
        mine = ref.deltas[name]
        if d.shape != mine.shape or not torch.allclose(d, mine, atol=F32_ATOL, rtol=F32_RTOL):
            v.fail(f"judge: {path}: PEFT get_delta_weight differs from the judge's float64 delta")
        else:
            worst = max(worst, float((d - mine).abs().max()))
    v.metrics["judge_vs_peft_delta_max_abs"] = worst

    # Trainable tokens: the wrappers PEFT built (module, indices, tied to which) and the rows it holds.
    from peft.utils.other import TrainableTokensWrapper
    built = {}
    for name, mod in pm.named_modules():
        if isinstance(mod, TrainableTokensWrapper) and "default" in mod.token_adapter.token_indices:
            layer = mod.token_adapter
            built[canon(name.removeprefix("base_model.model.")) + ".weight"] = (
                list(layer.token_indices["default"]), layer.tied_adapter is not None, layer.trainable_tokens_delta["default"])
    mine = {n: indices for n, (indices, _, _) in ref.token_rows.items()}
    if {n: b[0] for n, b in built.items()} != mine:
        v.fail(f"judge: PEFT built trainable-token wrappers {({n: b[0] for n, b in built.items()})}, the judge models {mine}")
    for n, (indices, tied, rows) in built.items():
        if n in ref.token_rows and not torch.equal(rows.detach().cpu(), ref.token_rows[n][1]):
            v.fail(f"judge: PEFT holds other trainable-token rows for {n} than the file")
        judge_tied = "(lm_head tied to it)" in ref.token_rows.get(n, ((), None, ""))[2]
        if n in ref.token_rows and tied != judge_tied:
            v.fail(f"judge: {n}: PEFT's token adapter tied={tied}, the judge assumed tied={judge_tied}")
    if built:
        v.metrics["token_wrappers"] = {n: {"indices": b[0], "tied": b[1]} for n, b in built.items()}
    return pm, base_model


def rounded_reference_model(case_dir: Path, cls_name: str, ref: Reference, dtype: torch.dtype):
    """The base model with every reference tensor rounded once to `dtype`: the best any merger can do."""
    m = model_classes()[cls_name].from_pretrained(case_dir / "base", dtype=torch.float32).eval()
    if cls_name == "GPT2ForSequenceClassification" and m.config.pad_token_id is None:
        m.config.pad_token_id = m.config.eos_token_id
    sd = m.state_dict()
    with torch.no_grad():
        for key, param in sd.items():
            r = ref.expected(canon(key))
            if r is not None and r.shape == param.shape:
                param.copy_(r.to(dtype).to(param.dtype))
    return m


def compare_outputs(got: dict, want: dict, atol: dict, rtol: float, v: Verdict, label: str) -> None:
    for key in want:
        if key not in got:
            v.fail(f"{label}: merged model produced no {key}")
            continue
        if got[key].shape != want[key].shape:
            v.fail(f"{label}: {key} shape {list(got[key].shape)} != unmerged PEFT's {list(want[key].shape)}")
            continue
        diff = (got[key] - want[key]).abs()
        v.metrics[f"{label}_{key}_max_abs"] = float(diff.max())
        if not torch.allclose(got[key], want[key], atol=atol[key], rtol=rtol):
            v.fail(f"{label}: {key} differ from unmerged PEFT: max |diff| {float(diff.max()):.3g} "
                   f"(atol {atol[key]:.3g}, rtol {rtol:.3g})")


# ----------------------------------------------------------------------------------------------- judge

def judge(case_dir: Path, merged: Path) -> Verdict:
    case = json.loads((case_dir / "case.json").read_text())
    v = Verdict(case.get("name", case_dir.name), merged)
    if not merged.is_dir():
        v.fail(f"{merged} is not a directory")
        return v
    cls_name = case.get("model_class", "GPT2LMHeadModel")
    dtype = getattr(torch, case.get("base_dtype", "float32"))

    check_files(case_dir, merged, v)
    if case.get("max_shard_size"):
        check_shards(case_dir, merged, case["max_shard_size"], v)
    # A case with .bin inputs (bin-adapter-and-base) holds safetensors twins of them: the reference is
    # computed from those, independently of how lorafuse reads the .bin files.
    base = read_checkpoint(twin_or(case_dir, "base"))
    out = read_checkpoint(merged, v)
    base_tied = bool(json.loads((case_dir / "base" / "config.json").read_text()).get("tie_word_embeddings", True))
    ref, adapter = reference_of(case_dir, case, base, v, base_tied)
    has_head = any(n.startswith(("score.", "classifier.")) for n in ref.replacements)
    out_cfg = check_config(case_dir, merged, has_head, v)

    # keys
    lora_keys = [k for k in out if "lora_" in k]
    if lora_keys:
        v.fail(f"output contains LoRA tensors {lora_keys[:4]}")
    out_canon = by_canon(out, "output")
    base_canon = ref.base_canon
    if len({k.startswith("transformer.") for k in out if not k.startswith(("lm_head", "score", "classifier"))}) > 1:
        v.fail("output mixes transformer.-prefixed and unprefixed keys")
    for name, key in base_canon.items():
        if name not in out_canon:
            if key.endswith(BUFFER_SUFFIXES):
                v.note(f"base buffer {key} not carried (transformers ignores it on load)")
            else:
                v.fail(f"base tensor {key} missing from the output")

    stats = {"weights_checked": 0, "weights_max_abs_err": 0.0, "tensors_byte_identical": 0}
    expected_new = set(ref.replacements) - set(base_canon)
    for name, key in out_canon.items():
        if "lora_" in key:
            continue
        if name == "lm_head.weight" and name not in base_canon and name not in ref.replacements:
            continue  # decided by the tie check below
        if name not in base_canon and name not in expected_new:
            v.fail(f"output has tensor {key} that neither the base nor the adapter has")
            continue
        r = ref.expected(name)
        if r is None:
            if same_bytes(out[key], base[base_canon[name]]):
                stats["tensors_byte_identical"] += 1
            else:
                v.fail(f"{key}: not targeted by the adapter but not byte-identical to the base")
        else:
            target_dtype = base[base_canon[name]].dtype if name in base_canon else dtype
            compare_weight(key, out[key], r, target_dtype, v, stats, ref.exact_rows(name))
    for name in expected_new:
        if name == "lm_head.weight":
            continue  # a full lm_head may be stored or tied to wte: decided by the tie check below
        if name not in out_canon:
            v.fail(f"adapter tensor {name} (a full replacement, e.g. modules_to_save) missing from the output")

    # vocabulary: a resized embedding in the adapter sets vocab_size to its row count
    ref_wte, ref_lm = ref.effective_embeddings()
    if ref_wte is not None and cls_name != "GPT2Model":
        want_vocab = int(ref_wte.shape[0])
        got_vocab = out_cfg.get("vocab_size")
        v.metrics["vocab_size"] = got_vocab
        if got_vocab != want_vocab:
            v.fail(f"config.json vocab_size {got_vocab!r} != {want_vocab} rows of the effective wte")
        if ref_lm is not None and ref_lm.shape != ref_wte.shape:
            v.fail(f"judge: effective wte {list(ref_wte.shape)} and lm_head {list(ref_lm.shape)} differ in shape")

    # tie
    v.metrics["tie_word_embeddings"] = out_cfg.get("tie_word_embeddings", True)
    if ref_wte is not None and cls_name == "GPT2LMHeadModel":
        should_untie = ref_lm is not None and not torch.equal(ref_wte, ref_lm)
        has_lm = "lm_head.weight" in out_canon
        tied = out_cfg.get("tie_word_embeddings", True)
        base_has_lm = "lm_head.weight" in base_canon
        if should_untie:
            if not has_lm or tied:
                v.fail(f"tie: effective wte and lm_head differ, so lm_head.weight must be written and "
                       f"tie_word_embeddings false (has lm_head.weight={has_lm}, tie_word_embeddings={tied})")
            elif not base_has_lm and "lm_head.weight" not in ref.replacements:
                compare_weight("lm_head.weight", out[out_canon["lm_head.weight"]], ref_lm, dtype, v, stats,
                               ref.exact_rows("lm_head.weight"))
        else:
            if has_lm and not base_has_lm:
                v.fail("tie: wte and lm_head are equal, yet lm_head.weight was written (keep the tie, store only wte)")
                if ref_lm is not None:  # and say whether what was written is even right
                    compare_weight("lm_head.weight", out[out_canon["lm_head.weight"]], ref_lm, dtype, v, stats,
                                   ref.exact_rows("lm_head.weight"))
            if not tied and not has_lm:
                v.fail("tie: tie_word_embeddings false without lm_head.weight: transformers would init lm_head randomly")
    v.metrics.update(stats)

    try:
        judge_models(case_dir, merged, case, cls_name, dtype, ref, adapter, v)
    except Exception as e:
        v.fail(f"loading or running the output with transformers failed: {type(e).__name__}: {str(e)[:300]}")
    return v


def judge_models(case_dir: Path, merged: Path, case: dict, cls_name: str, dtype: torch.dtype, ref: Reference,
                 adapter: dict, v: Verdict) -> None:
    """Model-level check: the output, loaded by transformers, computes what unmerged PEFT computes."""
    cls = model_classes()[cls_name]
    base_cfg = json.loads((case_dir / "base" / "config.json").read_text())
    token_ids = sorted({i for indices, _, _ in ref.token_rows.values() for i in indices})
    ids = token_batch(base_cfg.get("vocab_size", 50257), base_cfg.get("n_positions", 1024), resized_vocab(ref), token_ids)
    pm, base_model = unmerged_reference(case_dir, case, cls_name, ref, adapter, v)
    want = run_model(pm, ids)
    if cls_name == "GPT2Model":
        want["logits"] = want["hidden"] @ base_model.wte.weight.detach().float().T

    import transformers
    v.metrics["transformers"] = transformers.__version__
    merged_model, info = cls.from_pretrained(merged, dtype=torch.float32, output_loading_info=True)
    merged_model.eval()
    if cls_name == "GPT2ForSequenceClassification" and merged_model.config.pad_token_id is None:
        merged_model.config.pad_token_id = merged_model.config.eos_token_id
    for kind in ("missing_keys", "mismatched_keys"):
        if info.get(kind):
            v.fail(f"{cls_name}.from_pretrained(output): {kind} {sorted(info[kind])[:6]}")
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.endswith(BUFFER_SUFFIXES)]
    if unexpected:
        v.fail(f"{cls_name}.from_pretrained(output): unexpected keys {sorted(unexpected)[:6]}")
    got = run_model(merged_model, ids)
    if cls_name == "GPT2Model":
        from transformers import GPT2LMHeadModel
        lm, lm_info = GPT2LMHeadModel.from_pretrained(merged, dtype=torch.float32, output_loading_info=True)
        if lm_info.get("missing_keys"):
            v.fail(f"GPT2LMHeadModel.from_pretrained(output): missing {sorted(lm_info['missing_keys'])[:6]}")
        got["logits"] = run_model(lm.eval(), ids)["logits"]

    if dtype == torch.float32:
        tol = {k: LOGIT_ATOL for k in want}
        v.metrics["logit_tolerance"] = {"atol": LOGIT_ATOL, "rtol": LOGIT_RTOL,
                                        "why": "f32 base: PEFT's merge-equivalence tolerance"}
    else:
        best = run_model(rounded_reference_model(case_dir, cls_name, ref, dtype), ids)
        if cls_name == "GPT2Model":
            best["logits"] = best["hidden"] @ base_model.wte.weight.detach().float().T
        floor = {k: float((best[k] - want[k]).abs().max()) for k in want}
        tol = {k: max(LOGIT_ATOL, 4 * floor[k]) for k in want}
        v.metrics["logit_tolerance"] = {
            "atol": tol, "rtol": LOGIT_RTOL, "rounding_floor": floor,
            "unit_roundoff": 2.0 ** -(MANTISSA_BITS[dtype] + 1),
            "why": f"{case['base_dtype']} base: the exact merge rounded once to {case['base_dtype']} (the best any "
                   f"merger can store) already moves outputs by rounding_floor vs unmerged PEFT; a merge within "
                   f"1 ulp (checked per weight above) may about double that: atol = max(1e-4, 4·floor)",
        }
    compare_outputs(got, want, tol, LOGIT_RTOL, v, "model")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2 != 0 or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    import transformers
    import warnings
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(min(8, os.cpu_count() or 1))

    all_ok = True
    for case_dir, merged in zip(argv[0::2], argv[1::2]):
        t0 = time.time()
        case_dir, merged = Path(case_dir), Path(merged)
        try:
            v = judge(case_dir, merged)
        except Exception as e:  # a crash is a failed verdict, with the reason
            v = Verdict(case_dir.name, merged)
            v.fail(f"judge crashed: {type(e).__name__}: {e}")
        ok = not v.failures
        all_ok &= ok
        print(json.dumps({"case": v.case, "merged": str(merged), "pass": ok, "failures": v.failures,
                          "notes": v.notes, "metrics": v.metrics, "seconds": round(time.time() - t0, 2)}), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
