"""Real data: read a CSV strictly against its card (typed cells, named errors), then split it.

- :mod:`~synllm.dataset.schema`: one cell parser shared with the validator of synthetic rows;
- :mod:`~synllm.dataset.load`: ``load_dataset`` and the strict CSV reader;
- :mod:`~synllm.dataset.split`: the train/holdout split over distinct rows;
- :mod:`~synllm.dataset.draft` (with :mod:`~synllm.dataset.mining`): a card drafted from a CSV;
- :mod:`~synllm.dataset.check`: a card checked against its real rows.
"""

from synllm.dataset.load import Dataset, load_dataset, read_text_table
from synllm.dataset.split import drop_identifiers, split

__all__ = ["Dataset", "drop_identifiers", "load_dataset", "read_text_table", "split"]
