"""The course: labs in ``notebooks/course/`` that teach synthetic medical data with synllm.

- :mod:`~synllm.course.checks`: self-check cells (``synllm.course.checks.expect_between(...)``);
- :mod:`~synllm.course.demos`: leaky generators and the sample-size demonstration;
- :mod:`~synllm.course.build`: ``make course`` (student notebooks without solutions, executed instructor pages).
"""

from synllm.course import build, checks, demos

__all__ = ["build", "checks", "demos"]
