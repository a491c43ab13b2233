"""Benchmark the embedded model's weight encodings: the bundled Q4_1 file against its re-encodings.

1. Fidelity: next-token distributions over each dataset's P1 prompt followed by real rows
   (teacher-forced, every position), against the bundled Q4_1 file: mean and 99th-percentile
   KL divergence, top-1 agreement, and the text's mean negative log-likelihood. F16 holds the
   Q4_1 weights almost exactly, so its row shows the noise of the kernels' own arithmetic.
2. Speed: grammar-free decoding with the new decoder at several batch widths, each encoding
   in turn within each round (so machine load hits all alike): tok/s and the ratio to Q4_1.

Q8_0 is what the embedded backend runs by default (synllm/backends/embedded/weights.py).
Run: .venv/bin/python bench/bench_weights.py [--widths 1,10,16] [--rounds 2] [--tokens 1500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.embedded import EmbeddedBackend, default_model_path, import_llama_cpp
from synllm.backends.embedded.decoder import SequenceSpec, decoder_in_use
from synllm.backends.embedded.llama_model import load_model
from synllm.backends.embedded.weights import reencode, runtime_weights
from synllm.dataset import load_dataset, split
from synllm.prompts import render_prompt

FREE_PROMPT = "Count from 1 to 2000, separated by commas."


def texts() -> dict[str, str]:
    """Each dataset's P1 prompt (seed 0) followed by 15 real training rows as CSV."""
    found = {}
    for name in ("cirrhosis", "diabetes", "stroke"):
        table, card = load_dataset(name)
        train, _ = split(table, card)
        prompt = render_prompt(card, train, "p1", n_rows=10, seed=0)
        found[name] = prompt.text + "\n" + train.head(15).to_csv(index=False)
    return found


def next_token_logprobs(path: Path, text: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The text's first ``limit`` tokens and the log-probabilities the model gives each next token."""
    llama_cpp = import_llama_cpp()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=4096, logits_all=True, verbose=False)
    tokens = np.array(llm.tokenize(text.encode())[:limit])
    llm.eval(tokens.tolist())
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    return tokens, logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def fidelity(paths: dict[str, Path], limit: int) -> None:
    print("next-token distributions against the bundled Q4_1 file (teacher-forced, every position):")
    print(f"{'text':<10}{'weights':<9}{'tokens':>7}{'mean KL':>10}{'p99 KL':>9}{'top-1 agree':>12}{'NLL':>8}")
    for name, text in texts().items():
        tokens, ref = next_token_logprobs(paths["Q4_1"], text, limit)
        positions = np.arange(len(tokens) - 1)
        for label, path in paths.items():
            _, other = next_token_logprobs(path, text, limit) if label != "Q4_1" else (tokens, ref)
            kl = (np.exp(ref) * (ref - other)).sum(axis=1)
            agree = float((ref.argmax(axis=1) == other.argmax(axis=1)).mean())
            nll = float(-other[positions, tokens[1:]].mean())
            print(
                f"{name:<10}{label:<9}{len(tokens):>7}{kl.mean():>10.5f}{np.quantile(kl, 0.99):>9.4f}"
                f"{agree:>12.4f}{nll:>8.4f}"
            )


def speed(paths: dict[str, Path], widths: list[int], rounds: int) -> None:
    totals = {(label, w): [0, 0.0] for label in paths for w in widths}
    for _ in range(rounds):
        for w in widths:
            for label, path in paths.items():
                loaded = load_model(path)
                prompt = loaded.tokenize(loaded.chat_prompt(None, FREE_PROMPT))
                n = 200 if w == 1 else 48
                with decoder_in_use(loaded, 4096) as decoder:
                    decoder.generate(
                        prompt, [SequenceSpec(max_tokens=4, temperature=0)], parallel=1, threads=None, deadline=None
                    )
                    specs = [SequenceSpec(max_tokens=n, temperature=0)] * w
                    report = decoder.generate(prompt, specs, parallel=w, threads=None, deadline=None)
                totals[label, w][0] += sum(len(r.tokens) for r in report.results)
                totals[label, w][1] += (report.decode_ms + report.sample_ms) / 1000
    print(f"\ngrammar-free decoding, new decoder, {rounds} rounds interleaved (tok/s; x: against Q4_1 at that width):")
    for w in widths:
        base = totals["Q4_1", w][0] / totals["Q4_1", w][1]
        cells = "  ".join(
            f"{label} {t / s:6.1f} (x{t / s / base:.2f})" for (label, ww), (t, s) in totals.items() if ww == w
        )
        print(f"  width {w:>2}: {cells}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1,10,16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1500, help="tokens of each text scored")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    source = default_model_path()
    print(f"bundled model {source}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        paths = {"Q4_1": source, "Q8_0": runtime_weights(source, "q8_0")}
        for encoding in ("F16", "Q4_0"):
            paths[encoding] = Path(folder) / f"model.{encoding}.gguf"
            reencode(source, paths[encoding], encoding)
        fidelity(paths, args.tokens)
        if not args.skip_speed:
            speed(
                {k: paths[k] for k in ("Q4_1", "Q8_0", "Q4_0")}, [int(w) for w in args.widths.split(",")], args.rounds
            )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - started:.1f} s; load average after {load}")
    EmbeddedBackend().close()


if __name__ == "__main__":
    main()
