"""Benchmark the embedded backend: the old path (before issue #11) and the new one, side by side in one run.

1. Per card: batches of grammar-constrained CSV rows from a short plain prompt (``--prompt p3``:
   the study's P3 prompt instead), the old path and the new one interleaved batch by batch
   (so machine load hits both alike): the new decoder with the bundled Q4_1 weights as they
   are ("new q4_1": what the decoder alone gains) and with their Q8_0 copy ("new", the
   default; see synllm/backends/embedded/weights.py), then grammar-free decoding of about the
   same length with the new decoder and each path's weights: one sequence, and as many side
   by side as the new path decoded. Prints valid rows/s, tokens per valid row,
   pipeline tok/s (wall, prompt included) against grammar-free decode tok/s, prompt tokens
   evaluated per run against one prompt's worth, and distinct rows.
2. Stroke P4, seed 0, 20 rows through ``generate()`` with both paths at the study's
   temperature: completion tok/s against grammar-free decode, and distinct rows.
3. ``--parallel 1,4,8,16,32``: the new path at each batch width, interleaved, on the stroke
   P4 prompt (does batched decoding win on this machine?).

The old path is kept here as :class:`OldPathBackend` (llama-cpp-python's ``create_chat_completion``
with a ``LlamaGrammar`` after ``llm.reset()``). The machine may be shared: compare figures within
one run (ratios), not across runs; the load average is printed.

Run: .venv/bin/python bench/bench_embedded.py [--batches 2] [--rows 10] [--cards stroke,diabetes]
     [--prompt plain|p1|p2|p3|p4] [--parallel 1,4,8,16,32] [--skip-generate] [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.base import BaseBackend, Generation, GenerationRequest
from synllm.backends.embedded import DEFAULT_MODEL, EmbeddedBackend, default_model_path, import_llama_cpp
from synllm.backends.embedded.decoder import SequenceSpec, decoder_in_use
from synllm.backends.embedded.runtime import ThreadGovernor
from synllm.cards import Card, available_cards, load_card
from synllm.dataset import load_dataset, split
from synllm.dataset.schema import parse_table, row_format
from synllm.errors import CardError
from synllm.generation.constraints import to_gbnf
from synllm.generation.loop import generate
from synllm.prompts import render_prompt

SYSTEM = "You are a data generator. Reply with CSV rows only."
FREE_PROMPT = "Count from 1 to 2000, separated by commas."


#: The weights each path runs with (the old path: the bundled file).
WEIGHTS_OF = {"old": "original", "new q4_1": "original", "new": "q8_0"}


class OldPathBackend(BaseBackend):
    """The embedded path before issue #11: the prompt evaluated per request, the grammar on the whole vocabulary."""

    name = "embedded-old"
    model = DEFAULT_MODEL
    output_format = "csv"

    def __init__(self, n_threads: int | None = None) -> None:
        self.llama_cpp = import_llama_cpp()
        cores = len(os.sched_getaffinity(0))
        self.llm = self.llama_cpp.Llama(
            model_path=str(default_model_path()), n_ctx=4096, n_threads=cores, n_threads_batch=cores, verbose=False
        )
        self.governor = ThreadGovernor(self.llama_cpp, self.llm.ctx, every=8)
        self.n_threads = n_threads
        self.grammars: dict[str, Any] = {}
        evaluate = type(self.llm).eval
        self.llm.eval = lambda tokens: (self.governor.before_decode(), evaluate(self.llm, tokens))[1]

    def generate(self, request: GenerationRequest) -> Generation:
        grammar = None
        if request.grammar:
            if request.grammar not in self.grammars:
                self.grammars[request.grammar] = self.llama_cpp.LlamaGrammar.from_string(request.grammar, verbose=False)
            grammar = self.grammars[request.grammar]
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt})
        self.governor.start(self.n_threads)
        self.llm.reset()
        self.llama_cpp.llama_perf_context_reset(self.llm._ctx.ctx)
        started = time.perf_counter()
        reply = self.llm.create_chat_completion(
            messages=messages,
            grammar=grammar,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            seed=request.seed,
        )
        elapsed = time.perf_counter() - started
        perf = self.llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        usage = reply["usage"]
        return Generation(
            text=reply["choices"][0]["message"]["content"] or "",
            backend=self.name,
            model=DEFAULT_MODEL,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            elapsed_s=elapsed,
            constraint="grammar" if grammar else "none",
            finish_reason=reply["choices"][0]["finish_reason"],
            extra={"prompt_eval_tokens": int(perf.n_p_eval), "threads_used": sorted(self.governor.used)},
        )


@dataclass(frozen=True, slots=True)
class PathFigures:
    """What one path's batches of one card cost and gave."""

    card: str
    path: str
    rows_asked: int
    valid_rows: int
    distinct_rows: int
    wall_s: float
    cpu_s: float  # CPU time of this process during the requests (less sensitive to other load than wall time)
    gen_tokens: int
    prompt_tokens: int  # one prompt's worth
    prompt_eval_tokens: int  # evaluated over the whole run
    threads: str

    @property
    def valid_rows_per_s(self) -> float:
        return self.valid_rows / self.wall_s

    @property
    def tokens_per_valid_row(self) -> float:
        return self.gen_tokens / self.valid_rows if self.valid_rows else float("nan")

    @property
    def pipeline_tok_s(self) -> float:
        return self.gen_tokens / self.wall_s


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


def free_decode_tok_s(weights: str, request: GenerationRequest, n_tokens: int, sequences: int) -> float:
    """Grammar-free decode speed of the new decoder with ``weights`` (prompt excluded): ``sequences`` side by side."""
    loaded = EmbeddedBackend(weights=weights).loaded_model()
    prompt = loaded.tokenize(loaded.chat_prompt(request.system, request.prompt))
    with decoder_in_use(loaded, 4096) as decoder:
        specs = [SequenceSpec(max_tokens=n_tokens, temperature=0)] * sequences
        decoder.generate(prompt, specs[:1], parallel=1, threads=None, deadline=None)
        report = decoder.generate(prompt, specs, parallel=sequences, threads=None, deadline=None)
    tokens = sum(len(r.tokens) for r in report.results)
    return 1000 * tokens / (report.decode_ms + report.sample_ms)


def study_prompt(card: Card, prompt_type: str, n_rows: int) -> tuple[str, str]:
    """The study's prompt of ``prompt_type`` for a card (system, user), from the default split, seed 0."""
    table, card = load_dataset(card.name)
    train, _ = split(table, card)
    prompt = render_prompt(card, train, prompt_type, n_rows=n_rows, seed=0)
    return prompt.system, prompt.text


def bench_card(
    backends: dict[str, Any], card: Card, batches: int, n_rows: int, prompt_type: str = "plain"
) -> list[PathFigures]:
    """Both paths on one card, batch by batch, interleaved."""
    grammar = to_gbnf(card, n_rows)
    plain = prompt_type == "plain"
    system, text = (SYSTEM, prompt_for(card, n_rows)) if plain else study_prompt(card, prompt_type, n_rows)
    gens: dict[str, list[Generation]] = {path: [] for path in backends}
    kept: dict[str, list[pd.DataFrame]] = {path: [] for path in backends}
    cpu = dict.fromkeys(backends, 0.0)
    for batch in range(batches):
        request = GenerationRequest(
            model=DEFAULT_MODEL,
            system=system,
            prompt=text,
            grammar=grammar,
            seed=100 + batch,
            temperature=0.7,
            max_tokens=n_rows * 80,
        )
        for path, backend in backends.items():
            started = time.process_time()
            gens[path].append(backend.generate(request))
            cpu[path] += time.process_time() - started
            kept[path].append(valid_rows(gens[path][-1].text, card))
    figures = []
    for path, done in gens.items():
        rows = pd.concat(kept[path], ignore_index=True)
        threads = sorted({t for g in done for t in g.extra.get("threads_used", [])})
        figures.append(
            PathFigures(
                card=card.name,
                path=path,
                rows_asked=batches * n_rows,
                valid_rows=len(rows),
                distinct_rows=len(rows.astype(str).drop_duplicates()),
                wall_s=sum(g.elapsed_s for g in done),
                cpu_s=cpu[path],
                gen_tokens=sum(g.completion_tokens or 0 for g in done),
                prompt_tokens=done[0].prompt_tokens or 0,
                prompt_eval_tokens=sum(g.extra.get("prompt_eval_tokens", 0) for g in done),
                threads="/".join(map(str, threads)),
            )
        )
    return figures


def print_cards(figures: list[PathFigures], free: dict[tuple[str, str], tuple[float, float]], parallel: int) -> None:
    header = (
        f"{'card':<10}{'path':<10}{'thr':>5}{'valid/asked':>12}{'distinct':>9}{'rows/s':>8}{'x old':>8}{'x (cpu)':>8}"
        f"{'tok/row':>8}{'pipe tok/s':>11}{'free tok/s':>11}{'pipe/free':>10}{f'free x{parallel}':>10}"
        f"{'pipe/same':>10}{'prompt tok':>11}{'evaluated':>10}"
    )
    print(header)
    print("-" * len(header))
    old = {f.card: f for f in figures if f.path == "old"}
    for f in figures:
        one, many = free[f.card, WEIGHTS_OF[f.path]]
        same = one if f.path == "old" else many
        print(
            f"{f.card:<10}{f.path:<10}{f.threads:>5}{f'{f.valid_rows}/{f.rows_asked}':>12}{f.distinct_rows:>9}"
            f"{f.valid_rows_per_s:>8.2f}{f.valid_rows_per_s / old[f.card].valid_rows_per_s:>8.2f}"
            f"{old[f.card].cpu_s / old[f.card].valid_rows * f.valid_rows / f.cpu_s:>8.2f}"
            f"{f.tokens_per_valid_row:>8.1f}{f.pipeline_tok_s:>11.1f}{one:>11.1f}{f.pipeline_tok_s / one:>10.2f}"
            f"{many:>10.1f}{f.pipeline_tok_s / same:>10.2f}{f.prompt_tokens:>11}{f.prompt_eval_tokens:>10}"
        )
    print(
        "\nrows/s: valid rows / wall time of the requests; x old: against the old path in this run; x (cpu): "
        "the same ratio in valid rows per CPU-second of this process; "
        "pipe tok/s: generated tokens / that wall time (prompt evaluation included); free tok/s: grammar-free "
        f"decoding of one sequence (new decoder, the path's weights, prompt excluded); free x{parallel}: "
        f"{parallel} grammar-free sequences side by side; pipe/same: pipeline against free decoding with the "
        "same batching and weights (grammar cost alone); prompt tok: one prompt's tokens; "
        "evaluated: prompt tokens evaluated over the run."
    )


def bench_generate(backends: dict[str, Any], rounds: int = 2) -> None:
    """Stroke P4, seed 0, 20 rows through generate(), each path, at the study's temperature (0.7), interleaved."""
    table, card = load_dataset("stroke")
    train, _ = split(table, card)
    print(f"\ngenerate(): stroke P4, seed 0, 20 rows, temperature 0.7, batch size 20; {rounds} rounds interleaved")
    prompt = render_prompt(card, train, "p4", n_rows=20, seed=0)
    request = GenerationRequest(model=DEFAULT_MODEL, system=prompt.system, prompt=prompt.text)
    totals = {path: {"rows": 0, "tokens": 0, "seconds": 0.0, "free": 0.0} for path in backends}
    runs: dict[str, Any] = {}
    for _ in range(rounds):
        for path, backend in backends.items():
            with tempfile.TemporaryDirectory() as out:
                runs[path] = generate(
                    card, train, "p4", backend, DEFAULT_MODEL, n_rows=20, seed=0, out_dir=out, progress=False
                )
            free_decode_tok_s(WEIGHTS_OF[path], request, 64, 1)  # warm-up, as in the figure
            m = runs[path].manifest
            totals[path]["rows"] += len(runs[path].synthetic)
            totals[path]["tokens"] += m.tokens.completion
            totals[path]["seconds"] += m.timings.model_seconds
            totals[path]["free"] += free_decode_tok_s(WEIGHTS_OF[path], request, 200, 1) / rounds
    for path, t in totals.items():
        run = runs[path]
        tok_s = t["tokens"] / t["seconds"]
        print(
            f"  {path:<8} {t['rows']} rows in {t['seconds']:.1f} s ({run.manifest.diagnostics.requests} request(s) a "
            f"round): {tok_s:.1f} completion tok/s against {t['free']:.1f} grammar-free -> {tok_s / t['free']:.2f}; "
            f"{t['rows'] / t['seconds']:.2f} valid rows/s; {len(run.synthetic.drop_duplicates())} distinct rows of 20 "
            f"(real rows of that number: {run.manifest.diagnostics.real_distinct_rate or float('nan'):.0%} distinct)"
        )


def bench_parallel(widths: list[int], rounds: int = 2) -> None:
    """The new path at each batch width on the stroke P4 prompt (20 rows per request), interleaved."""
    table, card = load_dataset("stroke")
    train, _ = split(table, card)
    prompt = render_prompt(card, train, "p4", n_rows=20, seed=0)
    request = GenerationRequest(
        model=DEFAULT_MODEL,
        system=prompt.system,
        prompt=prompt.text,
        grammar=to_gbnf(card, 20),
        temperature=0.7,
        max_tokens=2000,
    )
    backends = {w: EmbeddedBackend(parallel=w) for w in widths}
    backends[widths[0]].generate(request)  # the prompt evaluated once, before timing
    totals = {w: [0, 0, 0.0] for w in widths}  # rows, tokens, seconds
    for r in range(rounds):
        for w, backend in backends.items():
            gen = backend.generate(GenerationRequest(**{**_fields(request), "seed": 500 + r}))
            totals[w][0] += len(gen.text.splitlines())
            totals[w][1] += gen.completion_tokens or 0
            totals[w][2] += gen.elapsed_s
    print(f"\nbatched decoding, stroke P4 prompt, 20 rows per request, {rounds} rounds interleaved:")
    base = totals[widths[0]][0] / totals[widths[0]][2]
    for w, (rows, tokens, seconds) in totals.items():
        print(
            f"  parallel {w:>2}: {rows / seconds:.2f} rows/s, {tokens / seconds:.1f} tok/s, "
            f"x{rows / seconds / base:.2f} against parallel {widths[0]}"
        )


def _fields(request: GenerationRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--cards", default=",".join(available_cards()))
    parser.add_argument("--threads", type=int, default=None, help="fixed thread count (default: auto by load)")
    parser.add_argument("--parallel", default="", help="batch widths to compare, e.g. 1,4,8,16,32")
    parser.add_argument("--prompt", default="plain", help="plain (a short prompt, as in issue #11) or p1..p4")
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args(argv)
    new = EmbeddedBackend(n_threads=args.threads)
    facts = new.describe(DEFAULT_MODEL)
    print(f"llama-cpp-python {facts['llama_cpp_version']}; {facts.get('system_info')}")
    print(f"model {facts.get('model_path')} ({facts.get('file_size', 0) / 1e6:.1f} MB); new path: {facts['sampler']}")
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; usable cores {facts['usable_cores']}\n"
    )
    backends = {
        "old": OldPathBackend(n_threads=args.threads),
        "new q4_1": EmbeddedBackend(n_threads=args.threads, weights="original"),
        "new": new,
    }
    warm = GenerationRequest(model=DEFAULT_MODEL, prompt=FREE_PROMPT, temperature=0, max_tokens=4)
    for backend in backends.values():
        backend.generate(warm)  # model load, context, token tables
    started = time.perf_counter()
    figures, free = [], {}
    for name in args.cards.split(","):
        try:
            card = load_card(name)
        except CardError as exc:
            print(f"skip {name}: {exc}")
            continue
        figures += bench_card(backends, card, args.batches, args.rows, args.prompt)
        request = GenerationRequest(model=DEFAULT_MODEL, prompt=FREE_PROMPT)
        length = max(16, figures[-1].gen_tokens // (args.batches * args.rows))
        for weights in ("original", "q8_0"):
            one = free_decode_tok_s(weights, request, length * args.rows, 1)
            free[card.name, weights] = (one, free_decode_tok_s(weights, request, length, args.rows))
    print_cards(figures, free, args.rows)
    if not args.skip_generate:
        bench_generate(backends)
    if args.parallel:
        bench_parallel([int(w) for w in args.parallel.split(",")])
    print(
        f"\ntotal {time.perf_counter() - started:.1f} s; load average after: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
