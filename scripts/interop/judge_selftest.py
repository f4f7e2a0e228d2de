#!/usr/bin/env python3
"""Proves judge.py can fail: broken variants ("mutants") of PEFT's expected/ outputs must all be FAILED,
and valid variants (sharded, buffers carried, a float64-then-round merge) must PASS.

Usage: python judge_selftest.py <cases-dir> <work-dir> [--only-tied]
Each variant starts from a copy of the case's expected/ (PEFT's merge, untied cases) or effective/ (the
unmerged PEFT model's weights with the tie rule applied, tied cases). `--only-tied`: only the tied-case
variants (run.mjs runs those under transformers v4 too, where some must fail at the logits, not only at
the judge's static tie check: v4 re-ties a stored lm_head when config.json says tied).
Prints one line per mutant on stderr and, last on stdout, {"results": [{"mutant", "caught", "detail"}]}.
`caught` is true when the judge decided as it must. Exit 0 when every decision was right, 1 otherwise. Each mutant is one mistake a merger could make.
Mutants whose case is absent from <cases-dir> are skipped.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import judge as J  # noqa: E402


def load(d: Path) -> dict[str, torch.Tensor]:
    return load_file(str(d / "model.safetensors"))


def save(d: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "model.safetensors"), metadata={"format": "pt"})


def edit_config(d: Path, fn) -> None:
    cfg = json.loads((d / "config.json").read_text())
    fn(cfg)
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def adapter_parts(case_dir: Path, module: str):
    _, ad = J.read_adapter(case_dir / "adapter")
    ad = {k.removeprefix("base_model.model."): v for k, v in ad.items()}
    return ad[f"{module}.lora_A.weight"].double(), ad[f"{module}.lora_B.weight"].double()


def set_weight(d: Path, key: str, value: torch.Tensor) -> None:
    t = load(d)
    t[key] = value.to(t[key].dtype)
    save(d, t)


def mut_no_transpose(case_dir: Path, d: Path) -> None:
    """attn.c_proj is square: merging B@A without the Conv1D transpose raises no shape error."""
    base = J.read_checkpoint(case_dir / "base")
    A, B = adapter_parts(case_dir, "transformer.h.0.attn.c_proj")
    s = 8 / 4
    set_weight(d, "transformer.h.0.attn.c_proj.weight", base["transformer.h.0.attn.c_proj.weight"].double() + s * (B @ A))


def mut_scale(case_dir: Path, d: Path, module: str, scale: float) -> None:
    base = J.read_checkpoint(case_dir / "base")
    A, B = adapter_parts(case_dir, module)
    key = module + ".weight"
    set_weight(d, key, base[key].double() + scale * (B @ A).T)


def mut_add_tensor(d: Path, key: str, value_from: str) -> None:
    t = load(d)
    t[key] = t[value_from].clone()
    save(d, t)


def mut_nudge(d: Path, key: str, ulps: int) -> None:
    t = load(d)
    w = t[key].clone()
    flat = w.view(-1)
    x = flat[0:1].double()
    flat[0] = (x + ulps * J.ulp(x, w.dtype)).to(w.dtype)[0]
    t[key] = w
    save(d, t)


def mut_to_f32(d: Path) -> None:
    save(d, {k: v.float() for k, v in load(d).items()})


def mut_drop_score(d: Path) -> None:
    t = load(d)
    del t["score.weight"]
    save(d, t)
    edit_config(d, lambda cfg: cfg.__setitem__("architectures", ["GPT2LMHeadModel"]))


def drop_lm_head_keep_tie(d: Path) -> None:
    """The naive tied save: only transformer.wte.weight (the base's), config tied, the trained lm_head lost."""
    t = load(d)
    del t["lm_head.weight"]
    save(d, t)
    edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", True))


def wte_from_lm_head_keep_tie(d: Path) -> None:
    """PEFT's merge of LoRA on a tied lm_head: the lm_head delta lands in the one shared matrix."""
    t = load(d)
    t["transformer.wte.weight"] = t.pop("lm_head.weight")
    save(d, t)
    edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", True))


def config_says_tied(d: Path) -> None:
    """Both matrices stored (different), config left tied: v5 loads both (and warns), v4 re-ties silently."""
    edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", True))


def untie_equal(d: Path) -> None:
    t = load(d)
    t["lm_head.weight"] = t["transformer.wte.weight"].clone()
    save(d, t)
    edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", False))


def original_module_as_wte(c: Path, d: Path) -> None:
    """Takes the wrapper's original_module (the resized base) for wte instead of the trained copy."""
    _, ad = J.read_adapter(c / "adapter")
    t = load(d)
    t["transformer.wte.weight"] = ad["base_model.model.transformer.wte.original_module.weight"].clone()
    save(d, t)


def vocab_size_not_updated(c: Path, d: Path) -> None:
    base_vocab = json.loads((c / "base" / "config.json").read_text())["vocab_size"]
    edit_config(d, lambda cfg: cfg.__setitem__("vocab_size", base_vocab))


def token_parts(c: Path, module: str = "transformer.wte") -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(base wte, the adapter's trainable-token rows of `module`, their indices from adapter_config.json)."""
    cfg, ad = J.read_adapter(c / "adapter")
    tti = cfg["trainable_token_indices"]
    indices = list(tti[module.rsplit(".", 1)[-1]] if isinstance(tti, dict) else tti)
    rows = ad[f"base_model.model.{module}.token_adapter.trainable_tokens_delta"]
    return J.read_checkpoint(c / "base")["transformer.wte.weight"], rows, indices


def token_rows_at(c: Path, d: Path, where) -> None:
    """wte (tied: lm_head too) = the base with the trainable rows written at `where(indices)` instead."""
    base_wte, rows, indices = token_parts(c)
    t = load(d)
    t["transformer.wte.weight"] = base_wte.index_copy(0, torch.tensor(where(indices)), rows)
    save(d, t)


def token_rows_as_deltas(c: Path, d: Path) -> None:
    """The saved `trainable_tokens_delta` taken for what its name says: added to the base rows."""
    base_wte, rows, indices = token_parts(c)
    t = load(d)
    t["transformer.wte.weight"] = base_wte.index_add(0, torch.tensor(indices), rows)
    save(d, t)


def token_rows_lm_head_left_base(c: Path, d: Path) -> None:
    """Rows in wte only, lm_head stored as the base wte and untied: PEFT's tie of the token adapters ignored."""
    base_wte, _, _ = token_parts(c)
    t = load(d)
    t["lm_head.weight"] = base_wte.clone()
    save(d, t)
    edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", False))


def var_sharded(d: Path) -> None:
    t = load(d)
    keys = sorted(t)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for fname, ks in shards.items():
        save_file({k: t[k].contiguous() for k in ks}, str(d / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in ks})
    (d / "model.safetensors").unlink()
    total = sum(v.numel() * v.element_size() for v in t.values())
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n")


def var_buffers_carried(c: Path, d: Path) -> None:
    base = J.read_checkpoint(c / "base")
    t = load(d)
    t.update({k: v for k, v in base.items() if k.endswith(".attn.bias")})
    save(d, t)


def var_float64_rounded(c: Path, d: Path) -> None:
    """Targeted weights recomputed in float64 and rounded once to f32 (not PEFT's f32 arithmetic)."""
    base = J.read_checkpoint(c / "base")
    cfg, ad = J.read_adapter(c / "adapter")
    ref = J.Reference(base, cfg, ad, J.Verdict("x", d))
    t = load(d)
    for k in t:
        r = ref.expected(J.canon(k))
        if r is not None:
            t[k] = r.to(t[k].dtype)
    save(d, t)


def mut_dora_norm_of_base(case_dir: Path, d: Path, module: str, scale: float) -> None:
    """DoRA with the norm taken from the base weight alone (Conv1D: per column), not from W + delta."""
    base = J.read_checkpoint(case_dir / "base")
    _, ad = J.read_adapter(case_dir / "adapter")
    m = ad[f"base_model.model.{module}.lora_magnitude_vector"].double()
    A, B = adapter_parts(case_dir, module)
    w = base[module + ".weight"].double()
    set_weight(d, module + ".weight", (m / torch.linalg.norm(w, dim=0)).unsqueeze(0) * (w + scale * (B @ A).T))


# (name, case, mutate(case_dir, out_dir), the judge must FAIL it?)
MUTANTS = [
    ("dora-scaling-forgotten", "dora-attn-mlp",
     lambda c, d: mut_scale(c, d, "transformer.h.0.mlp.c_fc", 8 / 4)),
    ("dora-norm-of-base-weight-only", "dora-attn-mlp",
     lambda c, d: mut_dora_norm_of_base(c, d, "transformer.h.1.attn.c_attn", 8 / 4)),
    ("attn-c_proj-no-transpose", "attn-mlp", mut_no_transpose),
    ("rslora-scale-alpha-over-r", "rslora",
     lambda c, d: mut_scale(c, d, "transformer.h.0.attn.c_attn", 16 / 8)),
    ("alpha-pattern-creation-order", "alpha-pattern-overlap",
     lambda c, d: mut_scale(c, d, "transformer.h.1.mlp.c_fc", 3 / 4)),
    ("alpha-pattern-ignored", "rank-alpha-pattern",
     lambda c, d: mut_scale(c, d, "transformer.h.1.mlp.c_proj", 8 / 4)),
    ("float-alpha-truncated", "float-alpha",
     lambda c, d: mut_scale(c, d, "transformer.h.0.attn.c_attn", 12 / 4)),
    ("lora-key-left-in-output", "c-attn-r4",
     lambda c, d: mut_add_tensor(d, "transformer.h.0.attn.c_attn.lora_A.weight", "transformer.h.0.attn.c_attn.weight")),
    ("adapter-config-copied", "c-attn-r4",
     lambda c, d: shutil.copyfile(c / "adapter" / "adapter_config.json", d / "adapter_config.json")),
    ("lm-head-written-while-tied", "c-attn-r4",
     lambda c, d: mut_add_tensor(d, "lm_head.weight", "transformer.wte.weight")),
    ("untied-config-without-lm-head", "c-attn-r4",
     lambda c, d: edit_config(d, lambda cfg: cfg.__setitem__("tie_word_embeddings", False))),
    ("config-field-dropped", "attn-mlp",
     lambda c, d: edit_config(d, lambda cfg: cfg.pop("layer_norm_epsilon"))),
    ("generation-config-not-carried", "attn-mlp",
     lambda c, d: (d / "generation_config.json").unlink()),
    ("untargeted-tensor-changed", "attn-mlp",
     lambda c, d: mut_nudge(d, "transformer.ln_f.weight", 1)),
    ("f16-weight-2-ulp-off", "base-f16",
     lambda c, d: mut_nudge(d, "transformer.h.1.mlp.c_fc.weight", 2)),
    ("bf16-base-written-as-f32", "base-bf16", lambda c, d: mut_to_f32(d)),
    ("prefixless-adapter-ignored", "unprefixed-adapter-keys",
     lambda c, d: shutil.copyfile(c / "base" / "model.safetensors", d / "model.safetensors")),
    ("hub-layout-delta-dropped", "hub-layout-base",
     lambda c, d: set_weight(d, "h.1.attn.c_attn.weight", J.read_checkpoint(c / "base")["h.1.attn.c_attn.weight"])),
    ("seqcls-score-head-dropped", "real-seqcls", lambda c, d: mut_drop_score(d)),
    # Valid variants: the judge must PASS these (it must not demand PEFT's exact bytes or layout).
    ("sharded-output", "attn-mlp", lambda c, d: var_sharded(d), False),
    ("attn-bias-buffers-carried", "hub-layout-base", var_buffers_carried, False),
    ("float64-merge-rounded-once", "rank-alpha-pattern", var_float64_rounded, False),
    ("float64-merge-rounded-once-bf16", "base-bf16", var_float64_rounded, False),
    ("dora-float64-merge-rounded-once-bf16", "dora-base-bf16", var_float64_rounded, False),
]

# Tied wte/lm_head (the adapter changes one or both uses of the shared matrix), from effective/. The optional
# 5th item: under transformers v4 the judge must (also) fail at the model level, i.e. the logits, since v4
# re-ties a stored lm_head when config says tied.
TIED_MUTANTS = [
    ("tie-kept-lm-head-trained", "tied-mts-lm-head", lambda c, d: drop_lm_head_keep_tie(d), True, True),
    ("tie-kept-lora-lm-head-lost", "tied-lora-lm-head", lambda c, d: drop_lm_head_keep_tie(d), True, True),
    ("lora-lm-head-delta-in-shared-matrix", "tied-lora-lm-head", lambda c, d: wte_from_lm_head_keep_tie(d), True, True),
    ("dora-lm-head-in-shared-matrix", "tied-dora-lm-head", lambda c, d: wte_from_lm_head_keep_tie(d), True, True),
    ("both-stored-config-tied-dora-wte", "tied-dora-wte", lambda c, d: config_says_tied(d), True, True),
    ("both-stored-config-tied-lora-lm-head", "tied-lora-lm-head", lambda c, d: config_says_tied(d), True, True),
    ("both-stored-config-tied-lora-wte", "tied-lora-wte", lambda c, d: config_says_tied(d), True, True),
    ("both-stored-config-tied-resized", "tied-mts-resized-pad", lambda c, d: config_says_tied(d), True, True),
    ("resized-vocab-size-not-updated", "tied-mts-resized-pad", vocab_size_not_updated),
    ("original-module-taken-for-wte", "tied-mts-resized", original_module_as_wte),
    ("equal-embeddings-untied", "tied-mts-equal", lambda c, d: untie_equal(d)),
    # trainable tokens (the same rows replace rows of wte and, through PEFT's tie, of lm_head): effective/ keeps
    # the tie; wrong rows reach the logits through lm_head
    ("token-rows-at-sorted-indices", "tied-tokens-list", lambda c, d: token_rows_at(c, d, sorted), True, True),
    ("token-rows-at-indices-minus-1", "tied-tokens-list",
     lambda c, d: token_rows_at(c, d, lambda ix: [i - 1 for i in ix]), True, True),
    ("token-rows-added-as-deltas", "tied-tokens-dict", token_rows_as_deltas, True, True),
    ("token-rows-lm-head-left-base-untied", "tied-tokens-list", token_rows_lm_head_left_base, True, True),
    ("token-rows-lm-head-own-rows-lost", "tied-tokens-dict-lm-head", lambda c, d: drop_lm_head_keep_tie(d), True, True),
    # valid variants
    ("tied-case-sharded-output", "tied-lora-wte", lambda c, d: var_sharded(d), False),
    ("tokens-case-sharded-output", "tied-tokens-dict-lm-head", lambda c, d: var_sharded(d), False),
    ("tied-case-float64-merge-rounded-once", "tied-lora-lm-head", var_float64_rounded, False),
]


def main(argv: list[str]) -> int:
    only_tied = "--only-tied" in argv
    argv = [a for a in argv if a != "--only-tied"]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import transformers
    import warnings
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")
    cases, work = Path(argv[0]), Path(argv[1])
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    results = []
    v4 = transformers.__version__.startswith("4.")
    for name, case, mutate, *rest in (TIED_MUTANTS if only_tied else MUTANTS + TIED_MUTANTS):
        must_fail = rest[0] if rest else True
        model_must_fail = v4 and len(rest) > 1 and rest[1]
        case_dir = cases / case
        if not (case_dir / "case.json").is_file():
            continue
        d = work / name
        src = case_dir / "expected" if (case_dir / "expected").is_dir() else case_dir / "effective"
        shutil.copytree(src, d)
        try:
            mutate(case_dir, d)
            v = J.judge(case_dir, d)
            failed, detail = bool(v.failures), (v.failures[0] if v.failures else "passed")
            if model_must_fail:
                model_fails = [f for f in v.failures if f.startswith("model:")]
                failed = failed and bool(model_fails)
                detail = model_fails[0] if model_fails else f"no model-level failure under v4: {detail}"
        except Exception as e:  # the judge must decide cleanly, not crash; a crash is never right
            failed, detail = None, f"crash: {type(e).__name__}: {e}"
        caught = failed is must_fail
        label = f"{name} ({case}, must {'fail' if must_fail else 'pass'}{' at the logits' if model_must_fail else ''})"
        results.append({"mutant": label, "caught": caught, "detail": detail[:200]})
        if not caught:
            print(f"judge_selftest: {label}: WRONG: {detail[:160]}", file=sys.stderr)
    if all(r["caught"] for r in results):
        shutil.rmtree(work, ignore_errors=True)  # up to ~1 GB with the 124M case; kept when something is wrong
    print(json.dumps({"results": results}))
    return 0 if all(r["caught"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
