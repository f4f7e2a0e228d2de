#!/usr/bin/env python3
"""Judges lorafuse's GPT-2 forward pass against transformers and PEFT, per interop case.

  python forward_judge.py --node NODE --cli CLI [--devices cpu,dawn] <case_dir> <merged_dir> [<case_dir> <merged_dir> ...]

For each pair, on judge.py's token batch (every row a resize added, the trainable tokens' ids):
  1. `lorafuse logits <merged_dir> --ids ... --json` must equal the logits of transformers'
     `from_pretrained(merged_dir)` run in float32 (atol = rtol = 1e-4; a classifier: the pooled row);
  2. `lorafuse logits <case>/base --adapter <case>/adapter --ids ... --json` (the adapter unmerged) must
     equal PEFT's unmerged model's logits (judge.peft_reference), same tolerance;
     A multi-adapter case (case.json `multi_adapter`) skips 2 (`lorafuse logits` takes one adapter): its
     adapters applied unmerged with their weights are judged through 3, whose path (b) runs them;
  3. `lorafuse verify <merged_dir> --base --adapter... [--weights] --behaviour --json` must report behaviour ok = what
     torch finds: the merged model's logits within the tolerance lorafuse states (by dtype) of PEFT's
     unmerged model's; for lorafuse's own outputs that is ok, for PEFT's merge of a tied case it is
     what PEFT's merge really does.
Steps 1 and 2 compute in float32 on both sides (transformers upcasts f16/bf16 weights when asked for
float32), so their tolerance is the same for every dtype. Prints one JSON verdict per pair (judge.py's format).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judge as J  # noqa: E402
import torch  # noqa: E402

TOL = 1e-4


def lorafuse(node: str, cli: str, args: list[str]) -> tuple[int, str, str]:
    r = subprocess.run([node, cli, *args], capture_output=True, text=True, timeout=1200)
    return r.returncode, r.stdout, r.stderr


def within(got: torch.Tensor, want: torch.Tensor) -> tuple[bool, float]:
    if got.shape != want.shape:
        return False, float("inf")
    diff = (got - want).abs()
    return bool((diff <= TOL + TOL * want.abs()).all()), float(diff.max()) if diff.numel() else 0.0


def lorafuse_logits(node: str, cli: str, args: list[str], v: J.Verdict, label: str) -> torch.Tensor | None:
    code, out, err = lorafuse(node, cli, ["logits", *args, "--json"])
    if code != 0:
        v.fail(f"{label}: lorafuse logits exited {code}: {(err or out).strip()[-300:]}")
        return None
    return torch.tensor(json.loads(out)["logits"], dtype=torch.float32)


def judge_pair(node: str, cli: str, devices: list[str], case_dir: Path, merged: Path) -> J.Verdict:
    case = json.loads((case_dir / "case.json").read_text())
    v = J.Verdict(case.get("name", case_dir.name), merged)
    cls_name = case.get("model_class", "GPT2LMHeadModel")
    base = J.read_checkpoint(J.twin_or(case_dir, "base"))
    base_cfg = json.loads((case_dir / "base" / "config.json").read_text())
    ref, adapter = J.reference_of(case_dir, case, base, v, bool(base_cfg.get("tie_word_embeddings", True)))
    token_ids = sorted({i for indices, _, _ in ref.token_rows.values() for i in indices})
    ids = J.token_batch(base_cfg.get("vocab_size", 50257), base_cfg.get("n_positions", 1024), J.resized_vocab(ref), token_ids)
    pm, base_model = J.unmerged_reference(case_dir, case, cls_name, ref, adapter, v)
    unmerged = J.run_model(pm, ids)
    # A GPT2Model has no head: GPT2LMHeadModel's lm_head is the base's wte, untouched by a LoRA on wte.
    want_unmerged = unmerged["hidden"] @ base_model.wte.weight.detach().float().T if cls_name == "GPT2Model" else unmerged["logits"]
    lm_cls = J.model_classes()["GPT2LMHeadModel" if cls_name == "GPT2Model" else cls_name]
    merged_model = lm_cls.from_pretrained(merged, dtype=torch.float32).eval()
    if cls_name == "GPT2ForSequenceClassification" and merged_model.config.pad_token_id is None:
        merged_model.config.pad_token_id = merged_model.config.eos_token_id
    want_merged = J.run_model(merged_model, ids)["logits"]
    worst = {"checkpoint": 0.0, "unmerged": 0.0}
    for device in devices:
        for row in range(ids.shape[0]):
            id_text = ",".join(str(int(i)) for i in ids[row])
            sides = [("checkpoint", [str(merged)], want_merged[row])]
            # `lorafuse logits` takes one adapter; several are checked unmerged through verify --behaviour (3.)
            if not case.get("multi_adapter"):
                sides.append(("unmerged", [str(case_dir / "base"), "--adapter", str(case_dir / "adapter")], want_unmerged[row]))
            for side, args, want in sides:
                got = lorafuse_logits(node, cli, [*args, "--ids", id_text, "--device", device], v, f"{side} row {row} on {device}")
                if got is None:
                    continue
                ok, d = within(got, want)
                worst[side] = max(worst[side], d)
                if not ok:
                    v.fail(f"{side} row {row} on {device}: lorafuse's logits differ from torch's by up to {d:.3g} (tolerance {TOL} abs + rel)")
    if case.get("multi_adapter"):
        del worst["unmerged"]  # not run: see 2.
    v.metrics["logits_max_abs_vs_torch"] = worst
    v.metrics["devices"] = devices
    for device in devices:
        check_verify(node, cli, device, case_dir, J.adapter_args(case_dir, case), merged, want_merged, want_unmerged, v)
    return v


def check_verify(node: str, cli: str, device: str, case_dir: Path, adapter_args: list[str], merged: Path,
                 want_merged: torch.Tensor, want_unmerged: torch.Tensor, v: J.Verdict) -> None:
    code, out, err = lorafuse(node, cli, ["verify", str(merged), "--base", str(case_dir / "base"), *adapter_args, "--behaviour", "--device", device, "--json"])
    try:
        doc = json.loads(out)
        behaviour_ok = doc["behaviour"]["ok"]
        # torch's verdict under the tolerance lorafuse states for these weights' dtype
        tol = doc["behaviour"]["tolerance"]
        torch_same = bool(((want_merged - want_unmerged).abs() <= tol["atol"] + tol["rtol"] * want_unmerged.abs()).all())
        v.metrics["torch_merged_behaves_as_unmerged"] = {"verdict": torch_same, "tolerance": tol,
                                                         "max_abs": float((want_merged - want_unmerged).abs().max())}
        v.metrics.setdefault("verify_behaviour", {})[device] = {"exit": code, "ok": behaviour_ok, "max_abs": doc["behaviour"]["maxAbsDiff"],
                                         "greedy_diverges": [g["firstDivergence"] for g in doc["behaviour"]["greedy"]]}
        if behaviour_ok != torch_same:
            v.fail(f"verify --behaviour on {device} says ok={behaviour_ok}, torch says the merged model behaves as PEFT's unmerged one: {torch_same}")
    except (ValueError, KeyError, TypeError):
        v.fail(f"verify --behaviour on {device} exited {code} without a behaviour report: {(err or out).strip()[-300:]}")


def main(argv: list[str]) -> int:
    node, cli, devices = "node", "packages/cli/bin/lorafuse.js", ["cpu"]
    while argv and argv[0].startswith("--"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--node":
            node = value
        elif flag == "--cli":
            cli = value
        elif flag == "--devices":
            devices = [d for d in value.split(",") if d]
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    import transformers
    import warnings
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    all_ok = True
    for case_dir, merged in zip(argv[0::2], argv[1::2]):
        t0 = time.time()
        try:
            v = judge_pair(node, cli, devices, Path(case_dir), Path(merged))
        except Exception as e:
            v = J.Verdict(Path(case_dir).name, Path(merged))
            v.fail(f"forward judge crashed: {type(e).__name__}: {e}")
        ok = not v.failures
        all_ok &= ok
        print(json.dumps({"case": v.case, "merged": str(merged), "pass": ok, "failures": v.failures, "notes": v.notes,
                          "metrics": v.metrics, "seconds": round(time.time() - t0, 2)}), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
