"""Does a sequence's next-token distribution depend on what else is decoded in its batch? (issue 19)

Decoding several requests in one llama_decode per step (multi-prompt batching) would let the
embedded backend take concurrent requests; it keeps runs repeatable only if a sequence's
logits do not depend on the other sequences of its batch. This probe feeds one fixed token
string to a sequence started from the stroke P4 prompt and compares its logits, step by step,
with the logits of the same sequence decoded among others: the same prompt or the cirrhosis
P4 prompt, other batch positions and widths, the other prompt's cells before or after its
own. It prints, per layout, the steps whose logits are bit for bit equal to those of a
reference layout and the largest difference. Measured (llama-cpp-python 0.3.36, 2 CPU cores,
Q8_0 copy, first 600 prompt tokens): alone against 4 wide, 3 of 42 steps equal, logits up to
0.9 apart; 4 wide, the sequence 4th instead of 2nd: 26 of 42 equal, up to 0.48 apart;
another prompt's sequences in the batch changed nothing there, but with the whole prompts
(the 2623-token cirrhosis prompt's cells before the stroke prompt's) 3 of 43 steps were
equal, up to 1.0 apart: a sequence's logits depend on the batch width, its place in the
batch and where its cells lie, so a batch's rows would depend on which requests happened to
share it, i.e. on timing. The backend therefore takes one request at a time
(``max_concurrency = 1``) and decodes that request's sequences side by side, a layout fixed
by the request alone.

Run: .venv/bin/python bench/bench_composition.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synllm.backends.embedded import EmbeddedBackend
from synllm.backends.embedded.decoder import _PROMPT_CHUNK, decoder_in_use
from synllm.dataset import load_dataset, split
from synllm.prompts import render_prompt

FEED = {
    "A": "Male,67,0,1,Yes,Private,Urban,228.69,36.6,formerly smoked,1\nFemale,61,0,0,Yes",
    "B": "12,D-penicillamine,58.8,F,N,Y,Y,N,1.1,302,4.14,54,7394.8,113.52,88,307,10.6,4\n",
}
#: prompts: (prompt, sequence holding it) in the order evaluated; copies: (to, from); decode: (sequence, prompt).
LAYOUTS = {
    "alone": {"prompts": [("A", 0)], "copies": [(5, 0)], "decode": [(5, "A")]},
    "same prompt, 4 wide, 2nd": {
        "prompts": [("A", 0)],
        "copies": [(5, 0), (6, 0), (7, 0), (8, 0)],
        "decode": [(6, "A"), (5, "A"), (7, "A"), (8, "A")],
    },
    "same prompt, 4 wide, 4th": {
        "prompts": [("A", 0)],
        "copies": [(5, 0), (6, 0), (7, 0), (8, 0)],
        "decode": [(6, "A"), (7, "A"), (8, "A"), (5, "A")],
    },
    "other prompt, after it": {
        "prompts": [("A", 0), ("B", 1)],
        "copies": [(5, 0), (6, 1), (7, 1), (8, 1)],
        "decode": [(6, "B"), (5, "A"), (7, "B"), (8, "B")],
    },
    "other prompt, before it": {
        "prompts": [("B", 1), ("A", 0)],
        "copies": [(5, 0), (6, 1), (7, 1), (8, 1)],
        "decode": [(6, "B"), (5, "A"), (7, "B"), (8, "B")],
    },
}
WATCHED = 5
PROMPT_TOKENS = 600  # each prompt's first tokens (enough for the effect, and quick)


def main() -> None:
    loaded = EmbeddedBackend().loaded_model()
    prompts = {}
    for key, name in (("A", "stroke"), ("B", "cirrhosis")):
        table, card = load_dataset(name)
        prompt = render_prompt(card, split(table, card, random_state=0)[0], "p4", n_rows=5, seed=0)
        prompts[key] = loaded.tokenize(loaded.chat_prompt(prompt.system, prompt.text))[:PROMPT_TOKENS]
    feed = {key: loaded.tokenize(text) for key, text in FEED.items()}
    steps = min(len(f) for f in feed.values())
    llama_cpp = loaded.llama_cpp
    with decoder_in_use(loaded, 4096) as decoder:
        decoder.governor.start(None)

        def logits_of(layout: dict) -> list[np.ndarray]:
            llama_cpp.llama_memory_clear(decoder.memory, True)
            decoder.resident = None
            for key, seq in layout["prompts"]:
                tokens = prompts[key]
                for start in range(0, len(tokens), _PROMPT_CHUNK):
                    chunk = tokens[start : start + _PROMPT_CHUNK]
                    decoder._fill([(t, start + i, seq, False) for i, t in enumerate(chunk)])
                    decoder._run_decode()
            for to, source in layout["copies"]:
                llama_cpp.llama_memory_seq_cp(decoder.memory, source, to, -1, -1)
            watched = [seq for seq, _ in layout["decode"]].index(WATCHED)
            out = []
            for k in range(steps):
                decoder._fill([(feed[key][k], len(prompts[key]) + k, seq, True) for seq, key in layout["decode"]])
                decoder._run_decode()
                out.append(decoder.workspace.logits(watched).copy())
            return out

        got = {name: logits_of(layout) for name, layout in LAYOUTS.items()}
        print(f"first {PROMPT_TOKENS} tokens of the stroke and cirrhosis P4 prompts; {steps} steps fed")
        for against in ("alone", "same prompt, 4 wide, 2nd"):
            print(f"steps bit-equal to {against!r}, and the largest logit difference:")
            for name, logits in got.items():
                diffs = [float(np.max(np.abs(a - b))) for a, b in zip(got[against], logits)]
                print(f"  {name:<26} {sum(d == 0 for d in diffs):>2}/{steps}  {max(diffs):.3f}")
        llama_cpp.llama_memory_clear(decoder.memory, True)


if __name__ == "__main__":
    main()
