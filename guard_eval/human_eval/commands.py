"""``guard-eval human-eval serve|add-annotator|report``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guard_eval.hookspecs import hookimpl


def _print_link(base_url: str, name: str, token: str, role: str = "annotator") -> None:
    path = f"/admin/{token}" if role == "admin" else f"/a/{token}"
    print(f"  {role} {name}: {base_url.rstrip('/')}{path}", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    from guard_eval.human_eval.db import StudyDB, create_study

    db_path = Path(args.db)
    base_url = args.base_url or f"http://{args.host}:{args.port}"
    new: list[tuple[str, str, str]] = []
    if args.a or args.b:
        if not (args.a and args.b):
            raise ValueError("give both --a and --b (two `guard-eval run` output dirs or samples.jsonl files)")
        new.append(
            ("admin", create_study(db_path, args.a, args.b, args.n, args.seed, args.name_a, args.name_b), "admin")
        )
    elif not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no study yet; create it with --a RUN_A --b RUN_B")
    with StudyDB(db_path) as db:
        known = {a.name for a in db.annotators()}
        names = args.annotator or ([] if known else ["annotator-1"])
        new += [(name, db.add_annotator(name), "annotator") for name in names if name not in known]
        s = db.study
        print(f"study {db_path}: A = {s.name_a}, B = {s.name_b}, {s.n_items} items; "
              f"{len(db.answers())} answers so far", flush=True)  # fmt: skip
        old = sorted(known - {n for n, _, _ in new})
    if new:
        print("links (shown once; tokens are stored hashed):", flush=True)
        for name, token, role in new:
            _print_link(base_url, name, token, role)
    if old:
        print(f"existing annotators (links were printed when created): {', '.join(old)}; `guard-eval human-eval "
              f"add-annotator {db_path} NAME --rotate` issues a new link", flush=True)  # fmt: skip

    import uvicorn

    from guard_eval.human_eval.app import create_app

    print(f"serving on {base_url} (Ctrl+C to stop; answers are saved as they come)", flush=True)
    uvicorn.run(create_app(db_path, show_gold=args.show_gold), host=args.host, port=args.port,
                log_level="warning", access_log=False)  # fmt: skip
    return 0


def cmd_add_annotator(args: argparse.Namespace) -> int:
    from guard_eval.human_eval.db import StudyDB

    role = "admin" if args.admin else "annotator"
    with StudyDB(args.db) as db:
        token = db.add_annotator(args.name, role, rotate=args.rotate)
    _print_link(args.base_url, args.name, token, role)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from guard_eval.human_eval.report import summarize, to_markdown

    summary = summarize(args.db)
    print(to_markdown(summary), end="")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        print(f"summary: {path}")
    return 0


@hookimpl
def guard_register_commands(program, subparsers):
    if program != "guard-eval":
        return
    top = subparsers.add_parser("human-eval", help="blinded human A/B study of two runs' reasoning (web app + report)")
    sub = top.add_subparsers(dest="human_eval_command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="create a study from two runs (first time) and serve it to annotators",
                       description="The first call (--a, --b) builds the study into --db and prints the admin and "
                       "annotator links; later calls serve the same DB, keeping all answers.")  # fmt: skip
    p.add_argument("--a", help="run A: a `guard-eval run` output dir or its samples.jsonl (the baseline)")
    p.add_argument("--b", help="run B: the same for the model compared with A (e.g. the trained one)")
    p.add_argument("--n", type=int, default=50, help="items drawn from the sample ids both runs answered")
    p.add_argument("--seed", type=int, default=0, help="seed of the item draw")
    p.add_argument("--db", default="human-eval.sqlite", help="study database (default: human-eval.sqlite)")
    p.add_argument("--name-a", help="name of A in reports (default: the run's model name)")
    p.add_argument("--name-b", help="name of B in reports")
    p.add_argument(
        "--annotator",
        action="append",
        metavar="NAME",
        help="add an annotator and print their link (repeatable; default on a new study: annotator-1)",
    )
    p.add_argument("--show-gold", action="store_true", help="show the ground truth once an item is answered")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--base-url", help="URL printed in links (default: http://HOST:PORT), e.g. behind a proxy")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("add-annotator", help="add an annotator (or admin) to a study and print the link")
    p.add_argument("db")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="an admin token (results view and exports)")
    p.add_argument("--rotate", action="store_true", help="replace the token of an existing annotator")
    p.add_argument("--base-url", default="http://127.0.0.1:8000", help="where the app is served")
    p.set_defaults(func=cmd_add_annotator)

    p = sub.add_parser("report", help="win rates per question (Wilson CIs) and inter-annotator agreement")
    p.add_argument("db")
    p.add_argument("--json", help="also write the summary (read by the leaderboard and experiment) to this file")
    p.set_defaults(func=cmd_report)
