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
             touches the tied wte/lm_head pair, where PEFT's merge adds a LoRA delta to the one shared
             matrix. Files of base/ that save_pretrained does not write (generation_config.json of an
             unprefixed base) are copied, as a merger must carry every other file of the base directory.
  case.json  what the case is: config, layout, dtype, how PEFT resolved each LoRA module (r, alpha,
             scale), versions, seeds.

Tied cases (`tied-*`: the adapter changes wte and/or lm_head of a tied base) have no expected/:
PEFT's merge is wrong for some of them. They hold effective/ (the unmerged PEFT model's weights as a
GPT2LMHeadModel checkpoint, tie rule applied: the ground truth) and peft-merged/ (PEFT's own merge, with
case.json `peft_merged` saying what transformers loads wrong from it). See write_tied_case(). The
trainable-token cases (`tied-tokens-*`) are tied cases too.

Multi-adapter cases (`multi-*`; case.json `multi_adapter`: adapter dirs and weights) hold base/,
adapter-1/, adapter-2/, ... and effective/ (PEFT's model with every adapter active together, each LoRA
output times its weight): see write_multi_case().

The `lorafuse diff` case (`diff-training-run`; case.json `kind: "diff"`) holds no base/adapter pair
but the adapters of one short real training run: checkpoint-1..3/ and final/, plus case.json
`diff_reference`, the per-tensor statistics torch computes between them. See write_diff_case().

Usage:
  python peft_cases.py --out DIR [--cases a,b,...] [--size tiny|unit|unit-tied] [--force]
  python peft_cases.py --list
  python peft_cases.py --unit-test-data packages/core/test/data/peft   # the committed TS test data
  python peft_cases.py --torch-bin-test-data packages/core/test/data/torch-bin   # committed .bin test data

Deterministic: seeds are derived from the case name, and PYTHONHASHSEED is pinned to 0 (re-exec) because
PEFT writes target_modules from a set; reruns write identical files.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
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
    # Committed tied cases carry three checkpoints each (base, effective, peft-merged): one layer keeps the
    # committed folder small.
    "unit-tied": dict(n_embd=8, n_layer=1, n_head=2, vocab_size=50, n_positions=16, bos_token_id=49, eos_token_id=49),
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
    "dora-attn-mlp": dict(
        desc="DoRA (use_dora) on c_attn and c_fc (Conv1D: one norm per output column), magnitudes perturbed "
             "(seeded) before save_pretrained; expected = PEFT's merge",
        lora=dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8, use_dora=True),
        dora_perturb=True,
    ),
    "dora-untied-embeddings": dict(
        desc="DoRA on wte and lm_head of an untied base (tie_word_embeddings false, lm_head its own matrix) plus c_fc: "
             "wte's norm per embedding dimension over the vocabulary, lm_head's per vocabulary row; each use "
             "merged on its own; expected = PEFT's merge",
        lora=dict(target_modules=["wte", "lm_head", "c_fc"], r=4, lora_alpha=8, use_dora=True),
        dora_perturb=True,
        untied_base=True,
    ),
    "dora-base-bf16": dict(
        desc="DoRA on c_attn and c_proj over a BF16 base (as base-bf16): norms and scaling in f32, one rounding to "
             "bfloat16",
        lora=dict(target_modules=["c_attn", "c_proj"], r=4, lora_alpha=8, use_dora=True),
        dora_perturb=True,
        base_dtype="bfloat16",
    ),
    "sharded-output": dict(
        desc="lorafuse merge --max-shard-size 10KB: the output split into shards + model.safetensors.index.json; "
             "expected/ is PEFT's merge saved by save_pretrained(max_shard_size='10KB'), so the judge can hold "
             "lorafuse's index (split, file names, weight_map, total_size, total_parameters) to transformers' own. "
             "With the tiny sizes wte (12,800 bytes) and each c_attn/c_fc/mlp.c_proj weight are over the limit "
             "and get a shard of their own, placed before the shard being filled",
        lora=dict(target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8),
        max_shard_size="10KB",
    ),
    "bin-adapter-and-base": dict(
        desc="PyTorch .bin inputs: base/ holds pytorch_model.bin = torch.save of the state dict as transformers 4 "
             "save_pretrained(safe_serialization=False) writes it (plain dict, lm_head.weight a view of the wte "
             "storage), adapter/ holds adapter_model.bin from PEFT save_pretrained(safe_serialization=False); "
             "base-safetensors/ and adapter-safetensors/ are the same weights as safetensors (twins)",
        lora=dict(target_modules=["c_attn", "c_proj", "c_fc"], r=4, lora_alpha=8),
        torch_bin=True,
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
    # ---- tied wte/lm_head. GPT-2's lm_head.weight IS transformer.wte.weight: an adapter that changes
    # one use (or both differently) must be merged untied. `tied` holds how the case is built: the base is
    # loaded back from base/ (as a user loads "gpt2"), optionally resized, then get_peft_model; `perturb` adds
    # seeded noise to those modules_to_save copies (standing in for training) before save_pretrained.
    # Instead of expected/ these cases have effective/ and peft-merged/ (see write_tied_case).
    "tied-mts-resized": dict(
        desc="(a) seed scenario: resize_token_embeddings(vocab+3), modules_to_save [wte, lm_head] trained apart, "
             "LoRA on c_attn with rsLoRA. The base is loaded from a path, so PEFT's save_embedding_layers='auto' "
             "sees the resize and also saves the wrappers' internals: <m>.weight, <m>.modules_to_save.weight "
             "(the same trained copy) and <m>.original_module.weight (the resized base, unused by the forward)",
        lora=dict(target_modules=["c_attn"], r=8, lora_alpha=16, use_rslora=True, modules_to_save=["wte", "lm_head"]),
        tied=dict(resize=dict(extra=3), perturb=["wte", "lm_head"]),
    ),
    "tied-mts-resized-pad": dict(
        desc="(a') as tied-mts-resized, resized with pad_to_multiple_of=8 (vocab+3 rounded up to a multiple of 8) "
             "and saved with save_embedding_layers=False (what PEFT writes when the base path is unknown): "
             "only <m>.weight full tensors",
        lora=dict(target_modules=["c_attn"], r=8, lora_alpha=16, use_rslora=True, modules_to_save=["wte", "lm_head"]),
        tied=dict(resize=dict(extra=3, pad_to_multiple_of=8), perturb=["wte", "lm_head"], save_embedding_layers=False),
    ),
    "tied-mts-lm-head": dict(
        desc="(b) only lm_head in modules_to_save (trained), LoRA on c_attn: wte stays the base, lm_head differs",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, modules_to_save=["lm_head"]),
        tied=dict(perturb=["lm_head"]),
    ),
    "tied-lora-lm-head": dict(
        desc="(c) LoRA on the tied lm_head (target_modules [lm_head, c_attn]); PEFT also saves "
             "lm_head.base_layer.weight (save_embedding_layers auto). PEFT's merge adds the lm_head delta to the "
             "shared matrix, changing wte too",
        lora=dict(target_modules=["lm_head", "c_attn"], r=4, lora_alpha=8),
        tied=dict(),
    ),
    "tied-lora-wte": dict(
        desc="(d) LoRA on the tied wte (lora_embedding_A/B, target_modules [wte, c_attn]). PEFT's merge adds the "
             "embedding delta to the shared matrix, changing lm_head too",
        lora=dict(target_modules=["wte", "c_attn"], r=4, lora_alpha=8),
        tied=dict(),
    ),
    "tied-mts-equal": dict(
        desc="(e) modules_to_save [wte, lm_head] left untrained: both copies equal the base, so the tie must be kept",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, modules_to_save=["wte", "lm_head"]),
        tied=dict(),
    ),
    # ---- DoRA (use_dora): `dora_perturb` multiplies every magnitude vector by seeded noise before
    # save_pretrained (with init_lora_weights=False PEFT starts m at the weight norm, a DoRA factor of 1).
    "tied-dora-lm-head": dict(
        desc="DoRA on the tied lm_head (target_modules [lm_head, c_attn], use_dora): lm_head's norm is per row of the "
             "shared [vocab, n_embd] matrix plus its delta; wte stays the base, so the merge must untie",
        lora=dict(target_modules=["lm_head", "c_attn"], r=4, lora_alpha=8, use_dora=True),
        dora_perturb=True,
        tied=dict(),
    ),
    "tied-dora-wte": dict(
        desc="DoRA on the tied wte (lora_embedding_A/B + magnitude [n_embd], target_modules [wte, c_attn]): the "
             "norm is per embedding dimension over the vocabulary; lm_head stays the base, so the merge must untie",
        lora=dict(target_modules=["wte", "c_attn"], r=4, lora_alpha=8, use_dora=True),
        dora_perturb=True,
        tied=dict(),
    ),
    # ---- trainable tokens: `trainable_token_indices` rows are full new values, index_copy'd into the
    # embedding at the config's indices (row k -> indices[k], so the indices are deliberately unsorted). In a tied
    # model PEFT wraps lm_head in a TrainableTokensWrapper tied to wte's token adapter: both uses change alike.
    # `perturb_tokens` adds seeded noise to every (untied) token adapter's rows, standing in for training.
    "tied-tokens-list": dict(
        desc="(tokens a) trainable_token_indices as a list (the input embedding, transformer.wte) on a tied base, "
             "plus LoRA on c_attn; rows trained (seeded noise). PEFT ties lm_head's token adapter to wte's, so both "
             "uses get the rows and the tie is kept",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, trainable_token_indices=[42, 3, 99, 17, 64]),
        tied=dict(perturb_tokens=True),
    ),
    "tied-tokens-dict": dict(
        desc="(tokens b) trainable_token_indices as a dict {'wte': [...]} (PEFT matches module names by endswith), "
             "tied base, LoRA on c_attn; rows trained (seeded noise); lm_head tied to wte's token adapter as in (a)",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, trainable_token_indices={"wte": [7, 0, 88]}),
        tied=dict(perturb_tokens=True),
    ),
    "tied-tokens-dict-lm-head": dict(
        desc="(tokens c) dict form naming both tied modules with different indices {'wte': [...], 'lm_head': [...]}: "
             "PEFT wraps each on its own (no tying: indices differ), both saved; wte and lm_head differ, so the "
             "merge must untie",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8,
                  trainable_token_indices={"wte": [11, 5, 70], "lm_head": [70, 20]}),
        tied=dict(perturb_tokens=True),
    ),
    # ---- several adapters in one merge (`lorafuse merge <base> <a1> <a2>... --weights ...`). `multi` holds one
    # LoraConfig per adapter, their weights, and which modules_to_save copies get seeded noise (standing in for
    # training). Ground truth is effective/: PEFT's model with every adapter loaded and active together, each
    # LoRA layer's scaling times the adapter's weight (see write_multi_case).
    "multi-two-ranks": dict(
        desc="(multi a) two adapters, weights [1, 0.5], overlapping on c_attn with different ranks (r=4 and r=8): "
             "W + 1·s1·B1A1 + 0.5·s2·B2A2 there; c_fc only in the first, c_proj only in the second",
        multi=dict(adapters=[dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8),
                             dict(target_modules=["c_attn", "c_proj"], r=8, lora_alpha=4)],
                   weights=[1, 0.5]),
    ),
    "multi-three-tied": dict(
        desc="(multi b) three adapters on a tied base, weights [1, -0.75, 0.5] (one negative): LoRA on c_attn; "
             "LoRA on c_attn and c_fc plus modules_to_save ln_f (trained copy); LoRA on the tied lm_head, so the "
             "effective lm_head differs from wte and the merge must untie",
        multi=dict(adapters=[dict(target_modules=["c_attn"], r=4, lora_alpha=8),
                             dict(target_modules=["c_attn", "c_fc"], r=2, lora_alpha=4, modules_to_save=["ln_f"]),
                             dict(target_modules=["lm_head"], r=4, lora_alpha=8)],
                   weights=[1, -0.75, 0.5], perturb={1: ["ln_f"]}),
    ),
    "multi-dora": dict(
        desc="(multi c) three adapters, weights [1, 0.5, -0.75], DoRA among them (magnitudes perturbed): LoRA on c_attn; "
             "DoRA on c_attn and c_fc; DoRA on c_attn and the untied-by-effect lm_head. In order, each DoRA adapter "
             "scales what the earlier ones left plus its delta by m / ||W + its delta||, as PEFT 0.21's forward and merge do",
        multi=dict(adapters=[dict(target_modules=["c_attn"], r=4, lora_alpha=8),
                             dict(target_modules=["c_attn", "c_fc"], r=2, lora_alpha=4, use_dora=True),
                             dict(target_modules=["c_attn", "lm_head"], r=4, lora_alpha=4, use_dora=True)],
                   weights=[1, 0.5, -0.75]),
    ),
    # ---- adapters people actually have: lora_bias, trained biases, MiCA, target_parameters, a classifier
    # base. `perturb` (tiny cases) adds seeded noise, standing in for training, to the named trainable tensors.
    "bias-all-lora-bias": dict(
        desc="bias='all' (every bias trained and saved: <targeted>.base_layer.bias, plain <m>.bias elsewhere) "
             "together with lora_bias on c_attn: the lora_B bias goes on top of the saved trained c_attn bias",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, bias="all", lora_bias=True),
        perturb=["bias"],
    ),
    "bias-lora-only": dict(
        desc="bias='lora_only' on c_fc, biases trained: PEFT saves <c_fc>.base_layer.bias (full values); lora_bias on "
             "c_fc too (nn.Linear's default init gives lora_B a non-zero bias): scale*lora_B.bias goes on top",
        lora=dict(target_modules=["c_fc"], r=4, lora_alpha=8, bias="lora_only", lora_bias=True),
        perturb=["bias"],
    ),
    "mica": dict(
        desc="init_lora_weights='mica' (B from the base's smallest left singular vectors, A zero, B frozen; the "
             "base is left alone): lora_A trained (seeded noise); saved and merged as plain LoRA",
        lora=dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8),
        init_lora_weights="mica",
        perturb=["lora_A"],
    ),
    "target-parameters": dict(
        desc="target_parameters (PEFT's ParamWrapper) on attn.c_attn.weight and the square attn.c_proj.weight, "
             "target_modules=[]: A [r, shape[1]], B [shape[0], r], delta = scale*B@A added to the Conv1D weight "
             "as stored (untransposed)",
        lora=dict(target_modules=[], target_parameters=["attn.c_attn.weight", "attn.c_proj.weight"], r=4, lora_alpha=8),
    ),
    "tied-new-tokens": dict(
        desc="PEFT's new-token recipe: resize_token_embeddings(vocab+3), trainable_token_indices on the 3 new rows, "
             "LoRA on c_attn; save_embedding_layers auto sees the resize and saves <m>.token_adapter.base_layer.weight "
             "(the resized embedding) and the rows, under wte and (tied copies) lm_head",
        lora=dict(target_modules=["c_attn"], r=4, lora_alpha=8, trainable_token_indices=[100, 101, 102]),
        tied=dict(resize=dict(extra=3), perturb_tokens=True),
    ),
    "token-cls-base": dict(
        desc="base checkpoint is a GPT2ForTokenClassification (classifier.weight/bias, 3 labels), LoRA on c_attn "
             "and c_fc: the head passes through merge and verification unchanged",
        lora=dict(target_modules=["c_attn", "c_fc"], r=4, lora_alpha=8),
        base_layout="token-cls",
    ),
    # ---- `lorafuse diff`: adapters of one real (tiny) training run. No merge: run.mjs diffs the
    # checkpoints with the CLI and compares its statistics with torch's, recorded in case.json `diff_reference`.
    "diff-training-run": dict(
        desc="(diff) tiny GPT-2 + LoRA (c_attn, c_proj; PEFT's default init, B = 0), 3 seeded AdamW steps on random "
             "token ids (labels = ids), save_pretrained after each step into checkpoint-1..3, then the final adapter "
             "into final/ (as Trainer does): final/ and checkpoint-3/ hold identical bytes",
        lora=dict(target_modules=["c_attn", "c_proj"], r=4, lora_alpha=8),
        train=dict(steps=3, lr=1e-2, batch=4, seq=16),
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
UNIT_DATA_MAX_BYTES = 600_000
# (case, size) committed for the TS tests.
UNIT_TEST_CASES = [("attn-mlp", "unit"), ("rank-alpha-pattern", "unit"), ("rslora", "unit"),
                   ("tied-mts-resized-pad", "unit-tied"), ("tied-lora-lm-head", "unit-tied"), ("tied-lora-wte", "unit-tied")]


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


def write_torch_bin_base(model, base_dir: Path, twin_dir: Path) -> None:
    """Moves the safetensors base to twin_dir and writes base_dir/pytorch_model.bin in its place.

    transformers 5 no longer writes .bin checkpoints; transformers 4's save_pretrained(safe_serialization=False)
    torch.saves a plain dict of the state dict, tied weights included as views of one storage (it removes
    aliases only for safetensors). That is written here with the same torch.save.
    """
    import torch
    shutil.copytree(base_dir, twin_dir)
    (base_dir / "model.safetensors").unlink()
    state_dict = model.state_dict()
    torch.save({k: state_dict[k] for k in state_dict}, base_dir / "pytorch_model.bin")


def copy_missing_files(src: Path, dst: Path) -> list[str]:
    """Copies files of src that dst lacks (other than weights), as a merger must carry them."""
    copied = []
    for p in sorted(src.iterdir()):
        if p.is_file() and not p.name.endswith((".safetensors", ".index.json", ".bin")):
            if not (dst / p.name).exists():
                shutil.copy2(p, dst / p.name)
                copied.append(p.name)
    return copied


def write_tiny_case(name: str, spec: dict, case_dir: Path, size: str) -> dict:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

    from transformers import GPT2ForTokenClassification

    dims = SIZES[size]
    layout = spec.get("base_layout", "lm")  # lm | hub | gpt2model | token-cls
    base_dtype = getattr(torch, spec.get("base_dtype", "float32"))
    model_cls = {"gpt2model": GPT2Model, "token-cls": GPT2ForTokenClassification}.get(layout, GPT2LMHeadModel)
    if layout == "token-cls":
        dims = {**dims, "num_labels": 3}
    base_dir, adapter_dir, expected_dir = case_dir / "base", case_dir / "adapter", case_dir / "expected"

    base_seed, adapter_seed = seed_of(name, "base"), seed_of(name, "adapter")
    torch.manual_seed(base_seed)
    # `untied_base`: a base saved with tie_word_embeddings false, so lm_head is a matrix of its own.
    model = model_cls(GPT2Config(**dims, **({"tie_word_embeddings": False} if spec.get("untied_base") else {}))).eval()
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
    if spec.get("torch_bin"):
        write_torch_bin_base(to_save, base_dir, case_dir / "base-safetensors")
    model = model.to(torch.float32)

    # --- adapter/ (REAL PEFT)
    torch.manual_seed(adapter_seed)
    lora_kwargs = dict(spec["lora"])
    init = spec.get("init_lora_weights", False)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(**lora_kwargs, init_lora_weights=init))
    perturb_trainable(name, peft_model, spec.get("perturb", []))
    dora_perturbed = perturb_dora_magnitudes(name, peft_model) if spec.get("dora_perturb") else []
    created_table = lora_module_table(peft_model)
    peft_model.save_pretrained(adapter_dir)
    if spec.get("torch_bin"):
        shutil.copytree(adapter_dir, case_dir / "adapter-safetensors")
        (adapter_dir / "adapter_model.safetensors").unlink()
        peft_model.save_pretrained(adapter_dir, safe_serialization=False)

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
    elif spec.get("max_shard_size"):
        merged.save_pretrained(expected_dir, max_shard_size=spec["max_shard_size"])
    else:
        merged.save_pretrained(expected_dir)
    copied = copy_missing_files(base_dir, expected_dir)

    notes = []
    if table != created_table:
        notes.append("PEFT resolved some modules differently after reload than at creation; expected/ follows the reload")
    return {
        "model_class": model_cls.__name__,
        "base_layout": {"lm": "prefixed", "hub": "unprefixed", "gpt2model": "unprefixed", "token-cls": "prefixed"}[layout],
        "base_dtype": str(base_dtype).removeprefix("torch."),
        "adapter_key_prefix": "" if spec.get("strip_adapter_prefix") else "base_model.model.",
        "tied_embeddings_untouched": True,
        "gpt2_config": dims,
        "seeds": {"base": base_seed, "adapter": adapter_seed},
        "lora_config": {**lora_kwargs, "init_lora_weights": init},
        "perturbed": spec.get("perturb", []),
        "lora_modules": table,
        "lora_modules_at_creation": created_table if table != created_table else None,
        **({"dora_magnitudes_perturbed": dora_perturbed} if dora_perturbed else {}),
        "expected_extra_files_copied_from_base": copied,
        # `lorafuse merge --max-shard-size` for this case, and expected/ saved with the same limit.
        **({"max_shard_size": spec["max_shard_size"]} if spec.get("max_shard_size") else {}),
        "notes": notes,
    }


def perturb_trainable(name: str, peft_model, what: list[str]) -> None:
    """Seeded noise on trainable tensors, standing in for training: "bias" every trainable bias outside the
    LoRA factors (bias="all"/"lora_only"), "lora_A" every lora_A (MiCA starts it at zero)."""
    import torch
    for n, p in peft_model.named_parameters():
        hit = ("bias" in what and p.requires_grad and n.endswith(".bias") and ".lora_" not in n) or \
              ("lora_A" in what and ".lora_A." in n)
        if hit:
            g = torch.Generator().manual_seed(seed_of(name, f"perturb/{n}"))
            with torch.no_grad():
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def effective_weights(peft_model) -> dict:
    """What the UNMERGED PeftModel's forward uses, per GPT2LMHeadModel parameter name (f32 copies).

    LoRA layers: base weight + PEFT's own get_delta_weight (the f32 delta its merge would add); modules_to_save
    wrappers: the active trained copy; trainable-token wrappers: PEFT's own get_merged_weights (the base matrix
    with the token rows index_copy'd in, as its forward uses it; a wrapper tied to another token adapter uses
    that adapter's rows); everything else: the module's own parameters. In a tied base both
    `transformer.wte.weight` and `lm_head.weight` are listed, each as its own use of the shared matrix sees it.
    """
    import torch
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import ModulesToSaveWrapper, TrainableTokensWrapper

    out: dict = {}

    def visit(prefix: str, module) -> None:
        if isinstance(module, ModulesToSaveWrapper):
            visit(prefix, module.modules_to_save["default"])
            return
        if isinstance(module, TrainableTokensWrapper):
            layer = module.token_adapter
            for n, t in layer.get_base_layer().named_parameters(recurse=False):
                out[prefix + n] = t.detach().clone()
            with torch.no_grad():
                out[prefix + "weight"] = layer.get_merged_weights(["default"]).detach().clone()
            return
        if isinstance(module, LoraLayer):
            base = module.get_base_layer()
            for n, t in base.named_parameters(recurse=False):
                out[prefix + n] = t.detach().clone()
            with torch.no_grad():
                out[prefix + "weight"] = dora_effective_weight(module) if module.use_dora.get("default") else \
                    (base.weight.detach() + module.get_delta_weight("default")).clone()
            return
        for n, t in module.named_parameters(recurse=False):
            out[prefix + n] = t.detach().clone()
        for n, child in module.named_children():
            visit(f"{prefix}{n}.", child)

    visit("", peft_model.base_model.model)
    return out


def dora_factor_and_delta(module, adapter: str = "default", weight: float = 1.0):
    """One DoRA adapter's pieces on a layer, in base layout, from PEFT's own functions: its delta
    (weight · get_delta_weight, the weight folded into the scaling as the weighted active model has it) and
    the factor m / ||W + delta|| per output feature (its DoRA layer's get_weight_norm of the *base* weight plus
    this delta); for an Embedding the delta is transposed for the norm and the factor scales the columns, as
    DoraEmbeddingVariant does."""
    from peft.tuners.lora.layer import Embedding as LoraEmbedding
    from peft.utils.other import transpose
    w = module.get_base_layer().weight.detach()
    delta = weight * module.get_delta_weight(adapter)
    dora = module.lora_magnitude_vector[adapter]
    if isinstance(module, LoraEmbedding):
        norm = dora.get_weight_norm(w, delta.T, scaling=1).detach()
        factor = (dora.weight / norm).view(1, -1)
    else:
        norm = dora.get_weight_norm(w, transpose(delta, module.fan_in_fan_out), scaling=1).detach()
        factor = transpose((dora.weight / norm).view(-1, 1), module.fan_in_fan_out)
    return factor.detach(), delta.detach()


def dora_effective_weight(module):
    """The weight a DoRA layer's unmerged forward uses, in base layout (see dora_factor_and_delta)."""
    w = module.get_base_layer().weight.detach()
    factor, delta = dora_factor_and_delta(module)
    return (factor * (w + delta)).detach().clone()


def perturb_dora_magnitudes(name: str, peft_model) -> list[str]:
    """Seeded noise on every DoRA magnitude vector (standing in for training): with init_lora_weights=False PEFT
    sets m = ||W + s·B@A||, which makes the DoRA factor 1 and hides a merge that forgets it. Returns the
    modules perturbed."""
    import torch
    from peft.tuners.lora import LoraLayer
    done = []
    for path, mod in peft_model.base_model.model.named_modules():
        if not isinstance(mod, LoraLayer) or not mod.use_dora.get("default"):
            continue
        m = mod.lora_magnitude_vector["default"].weight
        g = torch.Generator().manual_seed(seed_of(name, f"perturb-dora/{path}"))
        with torch.no_grad():
            m.mul_(1 + 0.2 * torch.randn(m.shape, generator=g))
        done.append(path)
    if not done:
        raise RuntimeError(f"{name}: dora_perturb set but PEFT built no DoRA layer")
    return done


def tied_token_batch(base_vocab: int, vocab: int, n_positions: int, token_ids=()):
    """Random ids of the base vocabulary, with every row added by a resize placed in the first row and every
    trainable token's id (`token_ids`) in the second, so that the input embedding's changed rows are used."""
    import torch
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, base_vocab, (2, min(16, n_positions)), generator=g)
    new = list(range(base_vocab, vocab))[: ids.shape[1] - 1]
    if new:
        ids[0, 1:1 + len(new)] = torch.tensor(new)
    tokens = sorted(set(int(i) for i in token_ids))[: ids.shape[1] - 1]
    if tokens:
        ids[1, 1:1 + len(tokens)] = torch.tensor(tokens)
    return ids


def token_indices_of(lora_kwargs: dict) -> list[int]:
    """Every index in `trainable_token_indices` (list or dict form)."""
    tti = lora_kwargs.get("trainable_token_indices")
    if tti is None:
        return []
    return sorted({i for v in (tti.values() if isinstance(tti, dict) else [tti]) for i in v})


def perturb_token_rows(name: str, peft_model) -> dict:
    """Seeded noise on every untied trainable-token adapter's rows (standing in for training); returns
    {module path: indices} of the adapters perturbed, and of those tied to another, as PEFT built them."""
    import torch
    from peft.utils.other import TrainableTokensWrapper
    built = {}
    for path, mod in peft_model.base_model.model.named_modules():
        if not isinstance(mod, TrainableTokensWrapper):
            continue
        layer = mod.token_adapter
        tied_to = layer.tied_adapter is not None
        built[path] = {"indices": list(layer.token_indices["default"]), "tied_to_another_token_adapter": tied_to}
        if tied_to:
            continue
        rows = layer.trainable_tokens_delta["default"]
        g = torch.Generator().manual_seed(seed_of(name, f"perturb-tokens/{path}"))
        with torch.no_grad():
            rows.add_(0.05 * torch.randn(rows.shape, generator=g))
    return built


def write_tied_case(name: str, spec: dict, case_dir: Path, size: str) -> dict:
    """A tied GPT-2 base with an adapter that touches wte and/or lm_head.

    base/         the tied base (no lm_head.weight), as in the other cases.
    adapter/      PEFT's save_pretrained, after loading the base back from base/ (so base_model_name_or_path is
                  "base", relative to the case dir: PEFT's save_embedding_layers="auto" reads it), an optional
                  resize_token_embeddings, get_peft_model, and seeded noise on the `perturb` modules_to_save copies.
    effective/    ground truth: the unmerged PeftModel's effective weights (effective_weights()), reloaded from
                  disk, written as an ordinary GPT2LMHeadModel checkpoint by save_pretrained following the tie
                  rule: tie kept (no lm_head.weight) exactly when the effective wte and lm_head are
                  bitwise equal, else both stored with tie_word_embeddings false; vocab_size = effective rows.
                  Checked here: loading it gives the unmerged model's logits (1e-5).
    peft-merged/  PeftModel.from_pretrained(...).merge_and_unload().save_pretrained(...): PEFT's own merge, which is
                  wrong for LoRA on a tied wte/lm_head (the delta reaches both uses). case.json records how it compares.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    dims = SIZES[size]
    tied = spec["tied"]
    case_dir = case_dir.resolve()  # the adapter is made with the case dir as cwd
    base_dir, adapter_dir = case_dir / "base", case_dir / "adapter"
    eff_dir, peft_dir = case_dir / "effective", case_dir / "peft-merged"
    base_seed, adapter_seed = seed_of(name, "base"), seed_of(name, "adapter")
    torch.manual_seed(base_seed)
    GPT2LMHeadModel(GPT2Config(**dims)).eval().save_pretrained(base_dir)

    resize = tied.get("resize")

    def load_base(mean_resizing: bool):
        m = GPT2LMHeadModel.from_pretrained("base", dtype=torch.float32).eval()
        if resize:
            m.resize_token_embeddings(dims["vocab_size"] + resize["extra"], pad_to_multiple_of=resize.get("pad_to_multiple_of"),
                                      mean_resizing=mean_resizing)
        return m

    cwd = os.getcwd()
    os.chdir(case_dir)  # base_model_name_or_path becomes "base" (relative), not this machine's path
    try:
        # --- adapter/ (REAL PEFT): as a user would, with "training" replaced by seeded noise on the copies.
        torch.manual_seed(adapter_seed)
        model = load_base(mean_resizing=True)
        lora_kwargs = dict(spec["lora"])
        peft_model = get_peft_model(model, LoraConfig(**lora_kwargs, init_lora_weights=False))
        for mod in tied.get("perturb", []):
            wrapper = peft_model.base_model.model.lm_head if mod == "lm_head" else peft_model.base_model.model.transformer.wte
            copy_w = wrapper.modules_to_save["default"].weight
            g = torch.Generator().manual_seed(seed_of(name, f"perturb/{mod}"))
            with torch.no_grad():
                copy_w.add_(0.02 * torch.randn(copy_w.shape, generator=g))
        token_wrappers = perturb_token_rows(name, peft_model) if tied.get("perturb_tokens") else {}
        dora_perturbed = perturb_dora_magnitudes(name, peft_model) if spec.get("dora_perturb") else []
        peft_model.save_pretrained(adapter_dir, save_embedding_layers=tied.get("save_embedding_layers", "auto"))

        # --- effective/: the adapter as PEFT reads it back from disk, unmerged.
        def reload():
            return PeftModel.from_pretrained(load_base(mean_resizing=False), adapter_dir).eval()
        reloaded = reload()
        table = lora_module_table(reloaded)
        eff = effective_weights(reloaded)
    finally:
        os.chdir(cwd)

    wte, lm = eff["transformer.wte.weight"], eff["lm_head.weight"]
    keep_tie = bool(wte.shape == lm.shape and torch.equal(wte, lm))
    cfg = GPT2Config.from_pretrained(base_dir)
    cfg.vocab_size = int(wte.shape[0])
    cfg.tie_word_embeddings = keep_tie
    eff_model = GPT2LMHeadModel(cfg).eval()
    missing, unexpected = eff_model.load_state_dict(eff, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{name}: effective weights do not fit GPT2LMHeadModel: missing {missing} unexpected {unexpected}")
    eff_model.save_pretrained(eff_dir)
    for p in sorted(base_dir.iterdir()):  # carried unchanged, as a merger must carry every other base file
        if p.is_file() and p.name != "config.json" and not p.name.endswith((".safetensors", ".index.json")):
            shutil.copy2(p, eff_dir / p.name)

    ids = tied_token_batch(dims["vocab_size"], int(wte.shape[0]), dims["n_positions"], token_indices_of(lora_kwargs))
    with torch.no_grad():
        want = reloaded(input_ids=ids).logits
        got = GPT2LMHeadModel.from_pretrained(eff_dir, dtype=torch.float32).eval()(input_ids=ids).logits
    eff_diff = float((got - want).abs().max())
    if not torch.allclose(got, want, atol=1e-5, rtol=1e-5):
        raise RuntimeError(f"{name}: effective/ does not reproduce the unmerged PeftModel (max |logit diff| {eff_diff})")

    # --- peft-merged/: PEFT's own merge of a fresh reload.
    os.chdir(case_dir)
    try:
        merged = reload().merge_and_unload()
    finally:
        os.chdir(cwd)
    merged.save_pretrained(peft_dir)
    merged_cfg = json.loads((peft_dir / "config.json").read_text())
    loaded = GPT2LMHeadModel.from_pretrained(peft_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        got_peft = loaded(input_ids=ids).logits
    peft_diff = float((got_peft - want).abs().max()) if got_peft.shape == want.shape else float("inf")
    wrong = []
    loaded_sd = dict(loaded.named_parameters(remove_duplicate=False))
    for k, t in sorted(eff.items()):
        g = loaded_sd.get(k)
        if g is None or g.shape != t.shape or not torch.allclose(g.detach(), t, atol=1e-6, rtol=1e-5):
            wrong.append(k)

    def embedding_keys(path: Path) -> list[str]:
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            return sorted(k for k in f.keys() if ("wte" in k or "lm_head" in k))

    return {
        "model_class": "GPT2LMHeadModel",
        "base_layout": "prefixed",
        "base_dtype": "float32",
        "adapter_key_prefix": "base_model.model.",
        "tied_embeddings_untouched": False,
        "gpt2_config": dims,
        "seeds": {"base": base_seed, "adapter": adapter_seed},
        "lora_config": {**lora_kwargs, "init_lora_weights": False},
        "build": {"base_loaded_from": "base (relative to the case dir)", "resize_token_embeddings": resize,
                  "modules_to_save_perturbed": tied.get("perturb", []),
                  "trainable_token_wrappers": token_wrappers,
                  "dora_magnitudes_perturbed": dora_perturbed,
                  "save_embedding_layers": tied.get("save_embedding_layers", "auto")},
        "adapter_embedding_keys": embedding_keys(adapter_dir / "adapter_model.safetensors"),
        "lora_modules": table,
        "effective": {
            "layout": "GPT2LMHeadModel.save_pretrained of the unmerged PeftModel's effective weights, tie rule applied",
            "tie_word_embeddings": keep_tie,
            "vocab_size": int(wte.shape[0]),
            "wte_lm_head_max_abs_diff": float((wte - lm).abs().max()) if wte.shape == lm.shape else None,
            "logits_max_abs_diff_vs_unmerged": eff_diff,
        },
        "peft_merged": {
            "tie_word_embeddings": merged_cfg.get("tie_word_embeddings", True),
            "embedding_keys": embedding_keys(peft_dir / "model.safetensors"),
            "logits_max_abs_diff_vs_unmerged": peft_diff,
            "matches_unmerged": bool(peft_diff <= 1e-4),
            "follows_tie_rule": bool(merged_cfg.get("tie_word_embeddings", True) == keep_tie),
            "wrong_after_load": wrong,
            "lorafuse_verify_exit": 1 if wrong else 0,
        },
        "notes": ["expected/ is not written for tied cases: PEFT's merge is not ground truth there (LoRA on the "
                  "tied lm_head or wte changes both uses of the shared matrix); effective/ is"],
    }


def write_multi_case(name: str, spec: dict, case_dir: Path, size: str) -> dict:
    """Several adapters of one base, merged active together with weights.

    base/          a tied GPT-2 base, saved by save_pretrained.
    adapter-<i>/   PEFT's save_pretrained of get_peft_model(<base loaded back from base/>, LoraConfig_i), one per
                   adapter, with seeded noise on the `perturb` modules_to_save copies.
    effective/     ground truth: PEFT's model with every adapter loaded (PeftModel.from_pretrained, load_adapter)
                   and active together (base_model.set_adapter([...])), each LoRA layer's scaling multiplied by its
                   adapter's weight: the effective weights of that unmerged model (base + Σ wᵢ·get_delta_weight_i;
                   modules_to_save: the active copy), saved as a GPT2LMHeadModel with the tie rule applied.
                   Checked here: loading it gives that model's logits (1e-5).
    case.json      `multi_adapter`: the adapter dirs and weights; `cat`: how PEFT's
                   add_weighted_adapter(combination_type="cat") (on its own LoRA layers) compares with the
                   weighted active adapters, or why PEFT refused it.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import ModulesToSaveWrapper
    from transformers import GPT2Config, GPT2LMHeadModel

    dims = SIZES[size]
    multi = spec["multi"]
    weights = multi["weights"]
    case_dir = case_dir.resolve()
    base_dir, eff_dir = case_dir / "base", case_dir / "effective"
    base_seed = seed_of(name, "base")
    torch.manual_seed(base_seed)
    GPT2LMHeadModel(GPT2Config(**dims)).eval().save_pretrained(base_dir)
    names = [f"adapter-{i + 1}" for i in range(len(multi["adapters"]))]
    seeds = {}
    for i, (dir_name, kwargs) in enumerate(zip(names, multi["adapters"])):
        seeds[dir_name] = seed_of(name, dir_name)
        torch.manual_seed(seeds[dir_name])
        model = GPT2LMHeadModel.from_pretrained(base_dir, dtype=torch.float32).eval()
        peft_model = get_peft_model(model, LoraConfig(**kwargs, init_lora_weights=False))
        if kwargs.get("use_dora"):
            perturb_dora_magnitudes(f"{name}/{dir_name}", peft_model)
        for mod in multi.get("perturb", {}).get(i, []):
            wrapper = peft_model.base_model.model.get_submodule(f"transformer.{mod}" if mod != "lm_head" else mod)
            copy_w = wrapper.modules_to_save["default"].weight
            g = torch.Generator().manual_seed(seed_of(name, f"perturb/{dir_name}/{mod}"))
            with torch.no_grad():
                copy_w.add_(0.05 * torch.randn(copy_w.shape, generator=g))
        peft_model.save_pretrained(case_dir / dir_name)
        (case_dir / dir_name / "README.md").unlink(missing_ok=True)

    def load_active():
        """Every adapter loaded from disk and active together, LoRA outputs weighted; and the names."""
        base = GPT2LMHeadModel.from_pretrained(base_dir, dtype=torch.float32).eval()
        pm = PeftModel.from_pretrained(base, case_dir / names[0], adapter_name="a1")
        for i, dir_name in enumerate(names[1:], start=2):
            pm.load_adapter(case_dir / dir_name, adapter_name=f"a{i}")
        pm.base_model.set_adapter([f"a{i + 1}" for i in range(len(names))])
        return pm.eval()

    pm = load_active()
    adapter_names = [f"a{i + 1}" for i in range(len(names))]
    weight_of = dict(zip(adapter_names, weights))
    eff: dict = {}

    def visit(prefix: str, module) -> None:
        if isinstance(module, ModulesToSaveWrapper):
            active = [a for a in adapter_names if a in module.modules_to_save]
            visit(prefix, module.modules_to_save[active[0]] if active else module.original_module)
            return
        if isinstance(module, LoraLayer):
            base = module.get_base_layer()
            for n, t in base.named_parameters(recurse=False):
                eff[prefix + n] = t.detach().clone()
            with torch.no_grad():
                # In adapter order, as the forward runs them: a LoRA adapter adds its delta, a DoRA one scales
                # everything so far plus its delta by m / ||W + its delta|| (W the base weight).
                w = base.weight.detach().clone()
                for a in adapter_names:
                    if a in module.lora_magnitude_vector:
                        factor, delta = dora_factor_and_delta(module, a, weight_of[a])
                        w = factor * (w + delta)
                    elif a in module.lora_A or a in module.lora_embedding_A:
                        w = w + weight_of[a] * module.get_delta_weight(a)
                eff[prefix + "weight"] = w
            return
        for n, t in module.named_parameters(recurse=False):
            eff[prefix + n] = t.detach().clone()
        for n, child in module.named_children():
            visit(f"{prefix}{n}.", child)

    visit("", pm.base_model.model)
    # The weights, applied where PEFT's forward applies them: each LoRA layer's scaling.
    for module in pm.modules():
        if isinstance(module, LoraLayer):
            for a in adapter_names:
                if a in module.scaling:
                    module.scaling[a] *= weight_of[a]

    wte, lm = eff["transformer.wte.weight"], eff["lm_head.weight"]
    keep_tie = bool(torch.equal(wte, lm))
    cfg = GPT2Config.from_pretrained(base_dir)
    cfg.tie_word_embeddings = keep_tie
    eff_model = GPT2LMHeadModel(cfg).eval()
    missing, unexpected = eff_model.load_state_dict(eff, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{name}: effective weights do not fit GPT2LMHeadModel: missing {missing} unexpected {unexpected}")
    eff_model.save_pretrained(eff_dir)
    for p in sorted(base_dir.iterdir()):
        if p.is_file() and p.name != "config.json" and not p.name.endswith((".safetensors", ".index.json")):
            shutil.copy2(p, eff_dir / p.name)
    ids = tied_token_batch(dims["vocab_size"], dims["vocab_size"], dims["n_positions"])
    with torch.no_grad():
        want = pm(input_ids=ids).logits
        got = GPT2LMHeadModel.from_pretrained(eff_dir, dtype=torch.float32).eval()(input_ids=ids).logits
    eff_diff = float((got - want).abs().max())
    if not torch.allclose(got, want, atol=1e-5, rtol=1e-5):
        raise RuntimeError(f"{name}: effective/ does not reproduce PEFT's weighted active adapters (max |logit diff| {eff_diff})")

    # PEFT's own way to combine them: add_weighted_adapter(cat) on a fresh load, then run that adapter alone.
    try:
        cat_pm = load_active()
        cat_pm.add_weighted_adapter(adapter_names, weights, "cat", combination_type="cat")
        delta_diff = 0.0
        with torch.no_grad():
            for module in cat_pm.modules():
                if isinstance(module, LoraLayer) and "cat" in module.scaling:
                    want_delta = sum(weight_of[a] * module.get_delta_weight(a) for a in adapter_names if a in module.scaling)
                    delta_diff = max(delta_diff, float((module.get_delta_weight("cat") - want_delta).abs().max()))
        cat_pm.set_adapter("cat")
        with torch.no_grad():
            cat_logits = cat_pm(input_ids=ids).logits
        cat = {"lora_delta_max_abs_diff_vs_weighted_sum": delta_diff,
               "logits_max_abs_diff_vs_weighted_active": float((cat_logits - want).abs().max()),
               "logits_match": bool(torch.allclose(cat_logits, want, atol=1e-4, rtol=1e-4)),
               "note": "the combined adapter carries the LoRA deltas only: modules_to_save copies of the sources "
                       "are not part of it, so its logits differ where a source saves a module whole"}
    except Exception as e:  # PEFT refuses some combinations (e.g. modules_to_save); record why
        cat = {"refused": f"{type(e).__name__}: {str(e)[:200]}"}

    return {
        "model_class": "GPT2LMHeadModel",
        "base_layout": "prefixed",
        "base_dtype": "float32",
        "adapter_key_prefix": "base_model.model.",
        "tied_embeddings_untouched": keep_tie,
        "gpt2_config": dims,
        "seeds": {"base": base_seed, **seeds},
        "multi_adapter": {"adapters": names, "weights": weights,
                          "lora_configs": [{**k, "init_lora_weights": False} for k in multi["adapters"]]},
        "effective": {
            "layout": "GPT2LMHeadModel.save_pretrained of PEFT's weighted active adapters' effective weights, tie rule applied",
            "tie_word_embeddings": keep_tie,
            "wte_lm_head_max_abs_diff": float((wte - lm).abs().max()),
            "logits_max_abs_diff_vs_unmerged": eff_diff,
        },
        "cat": cat,
        "notes": ["no expected/ or peft-merged/: PEFT merges several adapters only through add_weighted_adapter; "
                  "effective/ (the weighted active adapters, unmerged) is the ground truth"],
    }


# `lorafuse diff` pairs of the training-run case: (a, b, the files are byte-identical).
DIFF_PAIRS = [("final", "checkpoint-3", True), ("checkpoint-1", "final", False), ("checkpoint-2", "final", False)]
DIFF_ATOL, DIFF_RTOL = 1e-6, 1e-5  # lorafuse diff's defaults


def json_number(x: float):
    """A float for case.json, read by run.mjs with JSON.parse: non-finite ones as lorafuse diff --json writes them."""
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def torch_diff_stats(a_file: Path, b_file: Path) -> dict:
    """Per tensor of two adapter files, what torch computes: max |a-b| and max |a-b|/|b| in float32 (over all
    elements), torch.isclose violations at lorafuse diff's default tolerance, element count, identical bytes."""
    import torch
    from safetensors import safe_open
    with safe_open(str(a_file), "pt") as fa, safe_open(str(b_file), "pt") as fb:
        a_keys, b_keys = set(fa.keys()), set(fb.keys())
        out = {"only_in_a": sorted(a_keys - b_keys), "only_in_b": sorted(b_keys - a_keys), "tensors": {}}
        for k in sorted(a_keys & b_keys):
            ta, tb = fa.get_tensor(k), fb.get_tensor(k)
            a, b = ta.float(), tb.float()
            d = (a - b).abs()
            rel = d / b.abs()  # inf where b = 0 and a != 0, nan where both are 0
            rel = torch.where(d == 0, torch.zeros_like(rel), rel)
            out["tensors"][k] = {
                "shape": list(ta.shape), "dtype": str(ta.dtype).removeprefix("torch."), "count": ta.numel(),
                "identical_bytes": bool(ta.dtype == tb.dtype and ta.shape == tb.shape and torch.equal(
                    ta.contiguous().view(torch.uint8), tb.contiguous().view(torch.uint8))),
                "max_abs_diff": json_number(float(d.max()) if d.numel() else 0.0),
                "max_rel_diff": json_number(float(rel.max()) if rel.numel() else 0.0),
                "violations": int((~torch.isclose(a, b, rtol=DIFF_RTOL, atol=DIFF_ATOL)).sum()),
            }
    return out


def write_diff_case(name: str, spec: dict, case_dir: Path, size: str) -> dict:
    """A real (tiny) PEFT training run for `lorafuse diff`: checkpoint-1..N/ and final/ adapters.

    The model is a seeded tiny GPT2LMHeadModel with LoRA (PEFT's default init: A random, B zero), trained for a
    few AdamW steps on seeded random token ids; after each step `save_pretrained(checkpoint-<step>)`, after the
    loop `save_pretrained(final)` (as transformers' Trainer does). case.json `diff_reference` holds, per pair of
    DIFF_PAIRS and per tensor, the statistics torch computes from the saved files (torch_diff_stats).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    dims = SIZES[size]
    train = spec["train"]
    base_seed, adapter_seed, data_seed = seed_of(name, "base"), seed_of(name, "adapter"), seed_of(name, "data")
    torch.manual_seed(base_seed)
    model = GPT2LMHeadModel(GPT2Config(**dims))
    torch.manual_seed(adapter_seed)
    lora_kwargs = dict(spec["lora"])
    peft_model = get_peft_model(model, LoraConfig(**lora_kwargs))
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=train["lr"])
    g = torch.Generator().manual_seed(data_seed)
    losses = []
    for step in range(1, train["steps"] + 1):
        ids = torch.randint(0, dims["vocab_size"], (train["batch"], train["seq"]), generator=g)
        loss = peft_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
        peft_model.save_pretrained(case_dir / f"checkpoint-{step}")
    final = case_dir / "final"
    peft_model.save_pretrained(final)
    last = case_dir / f"checkpoint-{train['steps']}"
    same = {f: (final / f).read_bytes() == (last / f).read_bytes() for f in ("adapter_model.safetensors", "adapter_config.json")}
    if not all(same.values()):
        raise RuntimeError(f"{name}: final/ and {last.name}/ were saved from the same state but differ: {same}")

    pairs = []
    for a, b, identical in DIFF_PAIRS:
        stats = torch_diff_stats(case_dir / a / "adapter_model.safetensors", case_dir / b / "adapter_model.safetensors")
        all_identical = all(t["identical_bytes"] for t in stats["tensors"].values())
        if all_identical != identical:
            raise RuntimeError(f"{name}: {a} vs {b}: tensors identical={all_identical}, expected {identical}")
        pairs.append({"a": a, "b": b, "byte_identical": identical,
                      "equal_at_default_tolerance": identical or (not stats["only_in_a"] and not stats["only_in_b"] and
                                                                  all(t["violations"] == 0 for t in stats["tensors"].values())),
                      **stats})
    return {
        "kind": "diff",
        "model_class": "GPT2LMHeadModel",
        "gpt2_config": dims,
        "seeds": {"base": base_seed, "adapter": adapter_seed, "data": data_seed},
        "lora_config": lora_kwargs,
        "train": {**train, "optimizer": "torch.optim.AdamW (default betas, weight_decay 0.01)", "losses": losses},
        "checkpoints": [f"checkpoint-{s}" for s in range(1, train["steps"] + 1)] + ["final"],
        "final_equals_last_checkpoint_bytes": same,
        "diff_reference": {
            "how": "torch from the saved adapter_model.safetensors files: float32 max |a-b|, max |a-b|/|b|, "
                   f"(~torch.isclose(a, b, rtol={DIFF_RTOL}, atol={DIFF_ATOL})).sum()",
            "atol": DIFF_ATOL, "rtol": DIFF_RTOL, "pairs": pairs,
        },
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
    elif "tied" in spec:
        info = write_tied_case(name, spec, case_dir, size)
    elif "train" in spec:
        info = write_diff_case(name, spec, case_dir, size)
    elif "multi" in spec:
        info = write_multi_case(name, spec, case_dir, size)
    else:
        info = write_tiny_case(name, spec, case_dir, size)
    if spec.get("known_lorafuse_bug"):
        info["known_lorafuse_bug"] = spec["known_lorafuse_bug"]
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

Used by `packages/cli/test/peft-data.e2e.test.ts` (lorafuse merges each case on cpu and webgpu; `lorafuse
verify` is run on PEFT's merges). The interop suite (`node scripts/interop/run.mjs`) generates the same
kinds of cases, larger and more of them, into `.interop-work/` and judges them with transformers v5 and v4.

## Untied cases (the tied `wte`/`lm_head` pair untouched)

Base: `GPT2LMHeadModel(GPT2Config({dims}))`, seeded per case (seeds in `case.json`), saved with
`save_pretrained` (so `transformer.`-prefixed keys, F32, tied: no `lm_head.weight`).

| case | LoraConfig (always with `init_lora_weights=False`) |
|---|---|
{rows}

Each `<case>/` holds:

- `base/`: `config.json`, `generation_config.json`, `model.safetensors`.
- `adapter/`: `adapter_config.json`, `adapter_model.safetensors`, written by
  `get_peft_model(model, LoraConfig(...)).save_pretrained(...)` (PEFT's generated model card `README.md` is deleted).
- `expected/`: `PeftModel.from_pretrained(<base reloaded as f32>, adapter/).merge_and_unload().save_pretrained(...)`:
  PEFT's own merge. It is valid ground truth here because no case touches the tied `wte`/`lm_head` pair
  (the one place PEFT's merge can differ from its unmerged model); PEFT's merge matches the unmerged model
  to float32 rounding.
- `case.json`: the config used, the seeds, and `lora_modules`: how PEFT resolved each LoRA module after
  reloading the adapter (`r`, `alpha`, `scale`, base layer kind, base weight shape `[in, out]` for Conv1D).

## Tied cases (`tied-*`: the adapter changes `wte` and/or `lm_head` of a tied base)

Base: `GPT2LMHeadModel(GPT2Config({dims_tied}))` (one layer, to keep three checkpoints per case small),
tied, saved as above. The adapter is made the way a user makes one: the base is loaded back from `base/`
(so `adapter_config.json` says `"base_model_name_or_path": "base"`, relative to the case folder), resized
with `resize_token_embeddings` where the case says so, wrapped with `get_peft_model`; `modules_to_save`
copies that stand for trained ones get seeded noise (`build.modules_to_save_perturbed`) before
`save_pretrained`.

| case | what the adapter does | LoraConfig (always with `init_lora_weights=False`) |
|---|---|---|
{tied_rows}

Each `<case>/` holds `base/`, `adapter/` (as above), `case.json`, and instead of `expected/`:

- `effective/`: **the ground truth**: the weights the *unmerged* `PeftModel` (reloaded from `base/` +
  `adapter/`) uses in its forward pass — for a LoRA layer the base weight plus PEFT's own
  `get_delta_weight()` (f32), for a `modules_to_save` wrapper its trained copy — written as an ordinary
  **GPT2LMHeadModel checkpoint** with `save_pretrained`, following the tie rule: when the
  effective `transformer.wte.weight` and `lm_head.weight` differ (every tied case here) both are stored
  and `tie_word_embeddings` is `false`; `vocab_size` is the effective row count. So it is not a flat dump:
  compare by what transformers loads (with a tied config, `lm_head.weight` = `transformer.wte.weight`).
  Checked when written: loading it gives the unmerged model's logits (`effective.logits_max_abs_diff_vs_unmerged`).
- `peft-merged/`: `PeftModel.from_pretrained(...).merge_and_unload().save_pretrained(...)`: PEFT's own merge.
  Wrong for LoRA on the tied `lm_head` or `wte`: PEFT adds the delta to the one shared matrix, changing
  both uses, and keeps the config tied. Right for `modules_to_save` (PEFT >= 0.19 unties).
  `case.json` `peft_merged` says how it compares, measured with transformers: `wrong_after_load` (the
  parameters transformers loads that differ from `effective/`), `logits_max_abs_diff_vs_unmerged`,
  `lorafuse_verify_exit` (what `lorafuse verify peft-merged/ --base base/ --adapter adapter/` must return:
  1 when something loads wrong, naming those parameters; 0 otherwise).
"""


def write_unit_test_data(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    infos = []
    for name, size in UNIT_TEST_CASES:
        info, _ = write_case(name, out, size, force=True)
        # PEFT's generated model card says nothing about the data; keep the committed set small.
        (out / name / "adapter" / "README.md").unlink(missing_ok=True)
        # The stamp (script digest) is for the interop cache only; keep committed files stable.
        info.pop("stamp", None)
        (out / name / "case.json").write_text(json.dumps(info, indent=2) + "\n")
        infos.append(info)
    v = versions()

    def cfg_of(i):
        return json.dumps({k: x for k, x in i["lora_config"].items() if k != "init_lora_weights"})
    rows = "\n".join(f"| `{i['name']}` | `{cfg_of(i)}` |" for i in infos if i["tied_embeddings_untouched"])
    tied_rows = "\n".join(f"| `{i['name']}` | {i['description']} | `{cfg_of(i)}` |" for i in infos if not i["tied_embeddings_untouched"])
    (out / "README.md").write_text(UNIT_README.format(
        versions=", ".join(f"{k} {x}" for k, x in v.items()),
        dims=", ".join(f"{k}={x}" for k, x in SIZES["unit"].items()),
        dims_tied=", ".join(f"{k}={x}" for k, x in SIZES["unit-tied"].items()),
        rows=rows, tied_rows=tied_rows))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"unit test data: {total} bytes in {out}")
    if total >= UNIT_DATA_MAX_BYTES:
        raise SystemExit(f"peft_cases: unit test data is {total} bytes, over the {UNIT_DATA_MAX_BYTES} byte budget")


TORCH_BIN_README = """# PyTorch `.bin` test data written by real torch / transformers / PEFT

Regenerate (deterministic, seeded) with:

```sh
.venv-interop/bin/python scripts/interop/peft_cases.py --torch-bin-test-data packages/core/test/data/torch-bin
```

Library versions used: {versions}.

`bin-adapter-and-base/` is the interop case of that name at the `unit` size ({dims}):

- `base/`: `config.json`, `generation_config.json`, `pytorch_model.bin`: `torch.save` of the state dict as
  transformers 4's `save_pretrained(safe_serialization=False)` writes it (a plain dict; `lm_head.weight` is a
  view of the `transformer.wte.weight` storage).
- `base-safetensors/`: the same base as transformers 5's `save_pretrained` writes it (`model.safetensors`).
- `adapter/`: `adapter_config.json`, `adapter_model.bin` from PEFT `save_pretrained(safe_serialization=False)`.
- `adapter-safetensors/`: the same adapter as PEFT's default `save_pretrained` writes it.
- `expected/`: PEFT's `merge_and_unload` of `base/` + `adapter/` (f32), saved as safetensors.

Used by `packages/cli/test/torch-bin-real.e2e.test.ts`: merging the `.bin` adapter gives byte-identical
output to merging its safetensors twin, and the `.bin` base merges to what the safetensors inputs prove.
"""


def write_torch_bin_test_data(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info, _ = write_case("bin-adapter-and-base", out, "unit", force=True)
    case_dir = out / "bin-adapter-and-base"
    for sub in ("adapter", "adapter-safetensors"):
        (case_dir / sub / "README.md").unlink(missing_ok=True)
    info.pop("stamp", None)
    (case_dir / "case.json").write_text(json.dumps(info, indent=2) + "\n")
    v = versions()
    (out / "README.md").write_text(TORCH_BIN_README.format(
        versions=", ".join(f"{k} {x}" for k, x in v.items()),
        dims=", ".join(f"{k}={x}" for k, x in SIZES["unit"].items())))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"torch .bin test data: {total} bytes in {out}")
    if total >= UNIT_DATA_MAX_BYTES:
        raise SystemExit(f"peft_cases: torch .bin test data is {total} bytes, over the {UNIT_DATA_MAX_BYTES} byte budget")


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
    ap.add_argument("--torch-bin-test-data", type=Path, metavar="DIR")
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
    if args.torch_bin_test_data:
        write_torch_bin_test_data(args.torch_bin_test_data)
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
