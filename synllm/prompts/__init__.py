"""The four SynLLM prompt types: wording in ``templates.yaml`` (data), assembly in code.

- :mod:`~synllm.prompts.render`: ``render_prompt`` and the ``Prompt`` it returns;
- :mod:`~synllm.prompts.summary`: training statistics and association hints for P3 and P4.
"""

from synllm.prompts.render import PROMPT_TYPES, Prompt, prompt_info, render_prompt, sample_examples

__all__ = ["PROMPT_TYPES", "Prompt", "prompt_info", "render_prompt", "sample_examples"]
