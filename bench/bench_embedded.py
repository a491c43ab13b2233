"""Benchmark the embedded backend (SmolLM2-135M via llama.cpp) under the card grammar.

For each dataset card: a few batches of grammar-constrained CSV rows with a short
plain prompt, then one grammar-free generation of about the same length. Prints valid
rows/s, tokens per valid row, llama.cpp's own decode speed (perf counters) and the
ratios pipeline/raw. The machine may be shared: the load average and threads are shown.

Run: .venv/bin/python bench/bench_embedded.py [--batches 2] [--rows 10] [--cards stroke,diabetes]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from dataclasses import dataclass

import pandas as pd

from synllm.backends.base import GenerationRequest
from synllm.backends.embedded import DEFAULT_MODEL, EmbeddedBackend
from synllm.cards import Card, available_cards, load_card
from synllm.cards.rules import rows_passing_hard_rules
from synllm.dataset.schema import parse_table, row_format
from synllm.errors import CardError
from synllm.generation.constraints import to_gbnf

SYSTEM = "You are a data generator. Reply with CSV rows only."
FREE_PROMPT = "Count from 1 to 2000, separated by commas."


@dataclass(frozen=True, slots=True)
class CardFigures:
    """What one card's batches cost and gave."""

    card: str
    rows_asked: int
    valid_rows: int
    rule_ok_rows: int
    distinct_rows: int
    wall_s: float
    gen_tokens: int
    decode_ms: float
    decode_tokens: int
    prompt_ms: float
    prompt_tokens: int
    threads: str
    free_tokens: int
    free_wall_s: float
    free_decode_tok_s: float

    @property
    def valid_rows_per_s(self) -> float:
        return self.valid_rows / self.wall_s

    @property
    def tokens_per_valid_row(self) -> float:
        return self.gen_tokens / self.valid_rows if self.valid_rows else float("nan")

    @property
    def pipeline_tok_s(self) -> float:
        return self.gen_tokens / self.wall_s

    @property
    def decode_tok_s(self) -> float:
        return 1000 * self.decode_tokens / self.decode_ms if self.decode_ms else float("nan")

    @property
    def overhead_ms_per_token(self) -> float:
        """Wall time outside llama.cpp's prompt and decode work (sampling, grammar, Python), per token."""
        return (1000 * self.wall_s - self.prompt_ms - self.decode_ms) / self.gen_tokens

    @property
    def free_tok_s(self) -> float:
        return self.free_tokens / self.free_wall_s


def valid_rows(text: str, card: Card) -> pd.DataFrame:
    """Typed rows of ``text`` that have every field and pass every card check."""
    records = [r for r in csv.reader(io.StringIO(text)) if len(r) == len(card.synth_names)]
    if not records:
        return pd.DataFrame(columns=card.synth_names)
    raw = pd.DataFrame(records, columns=card.synth_names, dtype="string")
    table, problems = parse_table(raw, card)
    return table.drop(index=problems["row"].unique())


def prompt_for(card: Card, n_rows: int) -> str:
    """A short plain prompt; the study's prompts come from synllm.prompts."""
    return f"Write {n_rows} rows of realistic synthetic patient records for {card.domain}. Columns: {row_format(card)}"


def bench_card(backend: EmbeddedBackend, card: Card, batches: int, n_rows: int) -> CardFigures:
    grammar = to_gbnf(card, n_rows)
    gens, kept = [], []
    for batch in range(batches):
        request = GenerationRequest(
            model=DEFAULT_MODEL,
            system=SYSTEM,
            prompt=prompt_for(card, n_rows),
            grammar=grammar,
            seed=100 + batch,
            temperature=0.7,
            max_tokens=n_rows * 80,
        )
        gens.append(backend.generate(request))
        kept.append(valid_rows(gens[-1].text, card))
    rows = pd.concat(kept, ignore_index=True)
    gen_tokens = sum(g.completion_tokens or 0 for g in gens)
    free = backend.generate(
        GenerationRequest(
            model=DEFAULT_MODEL, prompt=FREE_PROMPT, temperature=0.0, seed=1, max_tokens=max(16, gen_tokens // batches)
        )
    )
    return CardFigures(
        card=card.name,
        rows_asked=batches * n_rows,
        valid_rows=len(rows),
        rule_ok_rows=int(rows_passing_hard_rules(rows, card).sum()) if len(rows) else 0,
        distinct_rows=len(rows.astype(str).drop_duplicates()),
        wall_s=sum(g.elapsed_s for g in gens),
        gen_tokens=gen_tokens,
        decode_ms=sum(g.extra.get("eval_ms", 0.0) for g in gens),
        decode_tokens=sum(g.extra.get("eval_tokens", 0) for g in gens),
        prompt_ms=sum(g.extra.get("prompt_eval_ms", 0.0) for g in gens),
        prompt_tokens=sum(g.prompt_tokens or 0 for g in gens) // batches,
        threads="/".join(sorted({str(g.extra.get("n_threads")) for g in [*gens, free]})),
        free_tokens=free.completion_tokens or 0,
        free_wall_s=free.elapsed_s,
        free_decode_tok_s=free.extra.get("gen_tok_s", float("nan")),
    )


def print_table(figures: list[CardFigures]) -> None:
    header = (
        f"{'card':<10}{'thr':>4}{'valid/asked':>12}{'rules ok':>9}{'distinct':>9}{'prompt tok':>11}"
        f"{'rows/s':>8}{'tok/row':>8}{'pipe tok/s':>11}{'decode tok/s':>13}{'free tok/s':>11}"
        f"{'pipe/decode':>12}{'pipe/free':>10}{'ovh ms/tok':>11}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        print(
            f"{f.card:<10}{f.threads:>4}{f'{f.valid_rows}/{f.rows_asked}':>12}{f.rule_ok_rows:>9}{f.distinct_rows:>9}"
            f"{f.prompt_tokens:>11}{f.valid_rows_per_s:>8.2f}{f.tokens_per_valid_row:>8.1f}{f.pipeline_tok_s:>11.1f}"
            f"{f.decode_tok_s:>13.1f}{f.free_tok_s:>11.1f}{f.pipeline_tok_s / f.decode_tok_s:>12.2f}"
            f"{f.pipeline_tok_s / f.free_tok_s:>10.2f}{f.overhead_ms_per_token:>11.1f}"
        )
    print(
        "\npipe tok/s: generated tokens / wall time of the grammar calls (prompt included); "
        "decode tok/s: llama.cpp perf counters (decode only) in the same calls; "
        "free tok/s: wall speed of a grammar-free generation of the same length "
        f"(its llama.cpp decode speed: {', '.join(f'{f.free_decode_tok_s:.1f}' for f in figures)}); "
        "ovh ms/tok: wall time outside llama.cpp's prompt+decode (sampling, grammar, Python) per token."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--cards", default=",".join(available_cards()))
    parser.add_argument("--threads", type=int, default=None, help="fixed thread count (default: auto by load)")
    args = parser.parse_args(argv)
    backend = EmbeddedBackend(n_threads=args.threads)
    facts = backend.describe(DEFAULT_MODEL)
    print(f"llama-cpp-python {facts['llama_cpp_version']}; {facts.get('system_info')}")
    print(f"model {facts.get('model_path')} ({facts.get('file_size', 0) / 1e6:.1f} MB)")
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; usable cores {facts['usable_cores']}\n"
    )
    figures = []
    started = time.perf_counter()
    for name in args.cards.split(","):
        try:
            card = load_card(name)
        except CardError as exc:
            print(f"skip {name}: {exc}")
            continue
        figures.append(bench_card(backend, card, args.batches, args.rows))
    print_table(figures)
    print(
        f"\ntotal {time.perf_counter() - started:.1f} s; load average after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
