"""Grammar-constrained token sampling at the cost of free sampling: sample first, check the grammar after.

One :class:`TokenSampler` per sequence holds llama.cpp's sampler chain
``min_p(0.05) -> top_p -> temperature -> seeded draw`` and, when constrained, a grammar
sampler. Each token is drawn from the free chain and only that token is checked
against the grammar (llama.cpp's ``common_sampler_sample``). When the grammar rejects
it, the token is drawn again from the grammar-first distribution: the grammar filters
the vocabulary, then the same chain runs. A small model asked for CSV often wants
something else (a header, prose), so the fallback is frequent (a sixth to two thirds
of the tokens); it is exact but cheap: the grammar is first asked about the 256
one-byte tokens, which rules out every token starting with a refused byte; of the rest
it checks only those that can survive ``min_p`` (within ln(1/0.05) of the best allowed
token), in widening logit bands from the top. Every returned token is one the grammar
accepts, so every finished text parses.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from synllm.backends.embedded.llama_model import NO_TEXT
from synllm.errors import BackendError

#: llama.cpp's min_p: tokens less likely than this fraction of the best one are never drawn.
MIN_P = 0.05
_MIN_P_GAP = -math.log(MIN_P)  # in logits: about 3.0
_SLACK = 1e-3  # float32 rounding at the min_p boundary; the chain's own min_p decides exactly
_TOKEN = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


@dataclass(slots=True)
class SamplingCounts:
    """Draws, grammar fallbacks and tokens the grammar was asked about, summed over sequences."""

    draws: int = 0
    fallbacks: int = 0
    grammar_checks: int = 0


class Workspace:
    """Buffers and token tables shared by the samplers of one decoder (they run one at a time).

    ``groups`` and ``single`` come from :meth:`LoadedModel.first_bytes`.
    """

    def __init__(self, llama_cpp: Any, ctx: Any, groups: list[np.ndarray], single: np.ndarray) -> None:
        self.llama_cpp, self.ctx = llama_cpp, ctx
        self.n_vocab = sum(len(g) for g in groups)
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.cur = np.zeros(self.n_vocab, dtype=_TOKEN)
        self.groups = groups
        self.probe_bytes = np.flatnonzero(single >= 0)
        self.probe_tokens = single[self.probe_bytes]
        self.always = np.concatenate([groups[NO_TEXT], *(groups[b] for b in np.flatnonzero(single < 0))])
        self.counts = SamplingCounts()

    def candidates(self, ids: np.ndarray, logits: np.ndarray) -> Any:
        """A llama_token_data_array over the first ``len(ids)`` slots of the buffer."""
        n = len(ids)
        self.cur["id"][:n] = ids
        self.cur["logit"][:n] = logits
        self.cur["p"][:n] = 0.0
        pointer = self.cur.ctypes.data_as(self.llama_cpp.llama_token_data_p)
        return self.llama_cpp.llama_token_data_array(data=pointer, size=n, selected=-1, sorted=False)

    def logits(self, source: int | np.ndarray) -> np.ndarray:
        """The logits of output ``source`` of the last decode (a view), or ``source`` itself when it is an array."""
        if isinstance(source, np.ndarray):
            return source
        pointer = self.llama_cpp.llama_get_logits_ith(self.ctx, source)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))


class TokenSampler:
    """Draws one sequence's tokens; with a grammar, only tokens the grammar accepts."""

    def __init__(
        self, workspace: Workspace, *, temperature: float, top_p: float, seed: int | None, grammar: Any = None
    ) -> None:
        self.ws = workspace
        llama_cpp = workspace.llama_cpp
        self.llama_cpp = llama_cpp
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if temperature <= 0:
            parts = [llama_cpp.llama_sampler_init_greedy()]
        else:
            seed = llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed % 0xFFFFFFFF  # 0xFFFFFFFF means random
            parts = [
                llama_cpp.llama_sampler_init_min_p(MIN_P, 1),
                llama_cpp.llama_sampler_init_top_p(float(top_p), 1),
                llama_cpp.llama_sampler_init_temp(float(temperature)),
                llama_cpp.llama_sampler_init_dist(seed),
            ]
        for part in parts:
            llama_cpp.llama_sampler_chain_add(chain, part)  # the chain owns and frees its parts
        self.chain = chain
        self.grammar = llama_cpp.llama_sampler_clone(grammar) if grammar is not None else None
        self._one = np.zeros(1, dtype=_TOKEN)

    def pick(self, source: int | np.ndarray) -> int:
        """The next token (not yet accepted) for output ``source`` of the last decode, or for saved logits."""
        self.ws.counts.draws += 1
        if isinstance(source, np.ndarray):
            token = self._draw(self.ws.ids, source)
        else:  # llama.cpp reads the logits and runs the chain itself
            token = int(self.llama_cpp.llama_sampler_sample(self.chain, self.ws.ctx, source))
        if self.grammar is None or self.allows(token):
            return token
        self.ws.counts.fallbacks += 1
        return self._draw_allowed(self.ws.logits(source))

    def accept(self, token: int) -> None:
        """Advance the grammar past ``token`` (the chain keeps no history)."""
        if self.grammar is not None:
            self.llama_cpp.llama_sampler_accept(self.grammar, token)

    def allows(self, token: int) -> bool:
        """True when the grammar (if any) accepts ``token`` next."""
        if self.grammar is None:
            return True
        self.ws.counts.grammar_checks += 1
        self._one[0] = (token, 0.0, 0.0)
        single = self.llama_cpp.llama_token_data_array(
            data=self._one.ctypes.data_as(self.llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self.llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(single))
        return bool(np.isfinite(self._one["logit"][0]))

    def close(self) -> None:
        """Free the llama.cpp samplers."""
        for sampler in (self.chain, self.grammar):
            if sampler is not None:
                self.llama_cpp.llama_sampler_free(sampler)
        self.chain = self.grammar = None

    def _draw(self, ids: np.ndarray, logits: np.ndarray) -> int:
        array = self.ws.candidates(ids, logits[ids] if len(ids) != len(logits) else logits)
        self.llama_cpp.llama_sampler_apply(self.chain, ctypes.byref(array))
        if array.selected < 0:
            raise BackendError("llama.cpp's sampler chose no token (empty candidate list)")
        return int(array.data[array.selected].id)

    def _draw_allowed(self, logits: np.ndarray) -> int:
        """Grammar first, then the chain, over every allowed token that can survive min_p.

        Only tokens whose first byte the grammar takes are candidates; they are checked in
        widening logit bands from the top until every allowed token within ln(1/min_p)
        of the best allowed one has been seen.
        """
        ids = self._possible_tokens()
        values = logits[ids]
        top, lowest = (float(values.max()), float(values.min())) if len(ids) else (-math.inf, -math.inf)
        upper, width = math.inf, _MIN_P_GAP
        floor = top - width
        allowed: list[np.ndarray] = []
        best = -math.inf
        while top > -math.inf:
            band = ids[(values >= floor) & (values < upper)]
            if len(band):
                kept = self._grammar_filter(band, logits[band])
                if len(kept):
                    allowed.append(kept)
                    best = max(best, float(logits[kept].max()))
            cut = best - _MIN_P_GAP - _SLACK
            if floor <= cut or floor <= lowest:
                break
            upper, width = floor, width * 4
            floor = cut if best > -math.inf else max(top - width, lowest)
        if best == -math.inf:
            raise BackendError("the grammar allows no next token (an unfinishable grammar); check the GBNF text")
        kept = np.concatenate(allowed)
        return self._draw(kept[logits[kept] >= best - _MIN_P_GAP - _SLACK], logits)

    def _possible_tokens(self) -> np.ndarray:
        """Ids of the tokens whose first byte the grammar takes next (the grammar asked once per byte)."""
        ws = self.ws
        taken = self._grammar_filter(ws.probe_tokens, np.zeros(len(ws.probe_tokens), dtype=np.float32))
        first = ws.probe_bytes[np.isin(ws.probe_tokens, taken)]
        return np.concatenate([ws.always, *(ws.groups[b] for b in first)])

    def _grammar_filter(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The ids (with their logits ``values``) the grammar accepts next."""
        self.ws.counts.grammar_checks += len(ids)
        array = self.ws.candidates(ids, values)
        self.llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(array))
        n = len(ids)
        return self.ws.cur["id"][:n][np.isfinite(self.ws.cur["logit"][:n])].copy()
