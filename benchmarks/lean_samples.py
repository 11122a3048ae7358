"""Write RUN/samples.lean.jsonl beside RUN/samples.jsonl: every field but the prompt and response text (which the
benchmark files give back by id), so a GPU run's outputs fit the transfer limits.  python benchmarks/lean_samples.py RUN..."""

import json
import sys
from pathlib import Path

for run in map(Path, sys.argv[1:]):
    if not (run / "samples.jsonl").is_file():
        continue
    with open(run / "samples.jsonl", encoding="utf-8") as f, open(run / "samples.lean.jsonl", "w", encoding="utf-8") as out:
        for line in f.read().split("\n"):  # not splitlines(): outputs may hold U+2028
            if line.strip():
                record = json.loads(line)
                out.write(json.dumps({k: v for k, v in record.items() if k not in ("prompt", "response")}) + "\n")
