"""Generation: ask a backend for rows until enough are valid, cached and resumable; many runs as a grid.

- :mod:`~synllm.generation.constraints`: a card compiled to a GBNF grammar and a JSON schema;
- :mod:`~synllm.generation.parsing`: model text to candidate rows, then valid and rejected rows;
- :mod:`~synllm.generation.spec`: ``RunSpec`` (what one run is: its key, folder and prompt) and ``GenerationOptions``;
- :mod:`~synllm.generation.loop`: ``generate`` and ``generate_run`` (one run, cached and resumable);
- :mod:`~synllm.generation.records`: one bounded cache record per answer;
- :mod:`~synllm.generation.runlock`: the per-run OS lock (one writer per run);
- :mod:`~synllm.generation.outputs`: a run's rows in order, their flags and the manifest totals; ``load_run``;
- :mod:`~synllm.generation.manifest`: the typed run manifest, read (checked whole) and written;
- :mod:`~synllm.generation.grid`: ``run_grid`` (models × prompt types × seeds) and its ``Failure`` records;
- :mod:`~synllm.generation.baselines`: non-LLM generators to compare with.

Nothing is imported here: ``synllm`` re-exports the public names.
"""
