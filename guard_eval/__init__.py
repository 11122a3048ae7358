"""guard_eval: evaluate reasoning-based safety guard models (GuardReasoner format)."""

from guard_eval.hookspecs import hookimpl
from guard_eval.verdict import TaskType, Verdict, parse_verdict

__all__ = ["TaskType", "Verdict", "hookimpl", "parse_verdict"]
__version__ = "0.1.0"
