"""Study orchestration, above every other layer: what ``make run`` and the notebooks drive.

- :mod:`~synllm.study.data`: load and split a dataset, draw the scoring samples, resolve models;
- :mod:`~synllm.study.scoring`: score runs and baselines against the real samples;
- :mod:`~synllm.study.batch`: the batch driver (papermill over the notebooks) and its profiles.

Nothing is imported here: ``synllm`` re-exports the public names.
"""
