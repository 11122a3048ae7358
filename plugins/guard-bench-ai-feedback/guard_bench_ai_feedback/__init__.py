"""An AI-feedback reward for guard-bench: a judge model scores each trace."""

from guard_bench_ai_feedback.plugin import ai_feedback

__all__ = ["ai_feedback"]
