"""Human A/B preference studies of two runs' reasoning traces.

``db`` builds and stores a study (SQLite, WAL), ``app`` serves it to annotators (FastAPI), ``report`` turns the answers
into win rates and agreement, ``commands`` adds ``guard-eval human-eval serve|add-annotator|report``. See
docs/human-eval.md.
"""
