"""A constitution-based reward for guard-bench: the share of written rules a guard trace follows."""

from guard_bench_constitution.plugin import RULES, constitution

__all__ = ["RULES", "constitution"]
