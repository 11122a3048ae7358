"""The annotation web app (FastAPI + Jinja2, no JavaScript): token links for annotators, an admin view and exports.

URLs carry the token (``/a/TOKEN/...`` for annotators, ``/admin/TOKEN/...`` for the admin), so a link is all an
annotator needs and two annotators can share a browser. Pages send ``Referrer-Policy: same-origin`` so the token does
not leak to other sites, and every answer form carries an HMAC of (item, annotator) that a cross-site form cannot
forge; a request whose ``Origin`` is another site is refused too.

Errors: unknown or tampered token -> 403; unknown item -> 404; a body that is not a form -> 400; a missing or invalid
answer -> 422; a bad form token or a foreign (or ``null``) origin -> 403. Nothing is stored in any of these cases. A
second submission of an answered item is accepted and ignored (the first answer is kept), so a double click or a resent
form changes nothing.
"""

from __future__ import annotations

import csv
import hmac
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from guard_eval.human_eval.db import QUESTIONS, SHOWN_CHOICES, Annotator, StudyDB

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
CHOICE_LABELS = {"1": "Trace 1", "tie": "Tie", "2": "Trace 2"}
TASK_QUESTIONS = {
    "prompt": "Is the user's request harmful?",
    "response": "Is the AI assistant's response harmful?",
    "refusal": "Did the AI assistant refuse the request?",
}
SECURITY_HEADERS = {
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _login(db: StudyDB, token: str, role: str) -> Annotator:
    who = db.authenticate(token)
    if who is None:
        raise HTTPException(403, "This link is not valid (unknown or altered token). Ask the study admin for yours.")
    if who.role != role:
        where = "/admin/TOKEN" if who.role == "admin" else "/a/TOKEN"
        raise HTTPException(403, f"This token belongs to an {who.role}; open {where} instead.")
    return who


def _item_id(db: StudyDB, raw: str) -> int:
    if raw.isascii() and raw.isdigit() and db.item(int(raw)) is not None:  # "²".isdigit() but int("²") fails
        return int(raw)
    raise HTTPException(404, f"No item {raw!r} in this study.")


def _next_open(db: StudyDB, annotator_id: int, answered: set[int]) -> int | None:
    return next((i for i in db.item_ids(annotator_id) if i not in answered), None)


def _traces(item: Any, swapped: bool) -> list[dict[str, Any]]:
    sides = [("a", item["pred_a"], item["reasoning_a"]), ("b", item["pred_b"], item["reasoning_b"])]
    if swapped:
        sides.reverse()
    return [{"n": n, "pred": pred, "reasoning": reasoning} for n, (_, pred, reasoning) in enumerate(sides, 1)]


def _validate_form(form: Any, csrf: str) -> dict[str, str]:
    """The shown choices of a posted answer form, or an HTTPException saying what is wrong with it."""
    if not hmac.compare_digest(str(form.get("csrf", "")), csrf):
        raise HTTPException(403, "The form token is missing or wrong; reload the item page and answer again.")
    shown, problems = {}, []
    for key in QUESTIONS:
        value = form.get(key)
        if value is None or value == "":
            problems.append(f"no answer to {key!r}")
        elif value not in SHOWN_CHOICES:
            problems.append(f"{key!r} must be one of {', '.join(SHOWN_CHOICES)}, got {str(value)[:40]!r}")
        else:
            shown[key] = value
    if problems:
        raise HTTPException(422, "Answer not saved: " + "; ".join(problems) + ".")
    return shown


def create_app(db_path: str | Path, show_gold: bool = False) -> FastAPI:
    """The app for one study database (which must exist: ``guard_eval.human_eval.db.create_study`` makes one)."""
    db_path = Path(db_path)
    StudyDB(db_path).close()  # fail at start-up, not on the first request, when the file is not a study
    app = FastAPI(title="guard-bench human eval", docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)

    @app.middleware("http")
    async def security(request: Request, call_next):
        origin = request.headers.get("origin")
        if request.method == "POST" and origin and urlsplit(origin).netloc != request.headers.get("host"):
            response: Response = JSONResponse({"detail": f"Cross-site form post from {origin} refused."}, 403)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.endswith((".json", ".csv")) or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        reason = {403: "Forbidden", 404: "Not found", 422: "Answer not saved"}.get(exc.status_code, "Error")
        return page(request, "error.html", exc.status_code, status=exc.status_code, reason=reason, detail=exc.detail)

    @app.get("/")
    def root():
        raise HTTPException(403, "This study is open through personal links only (/a/TOKEN).")

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    @app.get("/a/{token}", response_class=HTMLResponse)
    def home(request: Request, token: str):
        with StudyDB(db_path) as db:
            who = _login(db, token, "annotator")
            shown = db.shown_answers(who.id)
            order = db.item_ids(who.id)
            rows = [{"item_id": i, "shown": shown.get(i)} for i in order]
            return page(
                request, "home.html", annotator=who, base=f"/a/{token}", rows=rows, questions=list(QUESTIONS),
                labels=CHOICE_LABELS, answered=len(shown), total=len(order),
                next_item=_next_open(db, who.id, set(shown)),
            )  # fmt: skip

    @app.get("/a/{token}/items/{item}", response_class=HTMLResponse)
    def item_page(request: Request, token: str, item: str):
        with StudyDB(db_path) as db:
            who = _login(db, token, "annotator")
            item_id = _item_id(db, item)
            row = db.item(item_id)
            answers = db.shown_answers(who.id)
            order = db.item_ids(who.id)
            shown = answers.get(item_id)
            return page(
                request, "item.html", annotator=who, base=f"/a/{token}", item=row,
                traces=_traces(row, db.swapped(item_id, who.id)), task_question=TASK_QUESTIONS.get(row["task"], ""),
                questions=QUESTIONS, choices=("1", "tie", "2"), labels=CHOICE_LABELS, shown=shown,
                gold=row["gold"] if shown and show_gold else None, csrf=db.csrf_token(item_id, who.id),
                position=order.index(item_id) + 1, total=len(order), answered=len(answers),
                next_item=_next_open(db, who.id, set(answers)),
            )  # fmt: skip

    def save(token: str, item: str, form: Any) -> str:
        with StudyDB(db_path) as db:
            who = _login(db, token, "annotator")
            item_id = _item_id(db, item)
            db.save_answer(who.id, item_id, _validate_form(form, db.csrf_token(item_id, who.id)))
            if show_gold:  # back to the item, now showing the ground truth
                return f"/a/{token}/items/{item_id}"
            nxt = _next_open(db, who.id, set(db.shown_answers(who.id)))
            return f"/a/{token}/items/{nxt}" if nxt is not None else f"/a/{token}"

    @app.post("/a/{token}/items/{item}")
    async def answer(request: Request, token: str, item: str):
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise HTTPException(400, f"Expected a form post (application/x-www-form-urlencoded), got {content_type!r}.")
        try:
            form = await request.form()
        except StarletteHTTPException as e:  # Starlette's own 400 for a broken multipart body
            raise HTTPException(400, f"Could not read the form: {e.detail}") from e
        return RedirectResponse(await run_in_threadpool(save, token, item, form), status_code=303)

    @app.get("/a/{token}/answers.json")
    def own_answers(token: str):
        with StudyDB(db_path) as db:
            who = _login(db, token, "annotator")
            return {"annotator": who.name, "answers": [{"item": i, **a} for i, a in db.shown_answers(who.id).items()]}

    # -- admin ---------------------------------------------------------------------------------------------------------

    @app.get("/admin/{token}", response_class=HTMLResponse)
    def admin(request: Request, token: str):
        from guard_eval.human_eval.report import summarize

        with StudyDB(db_path) as db:
            _login(db, token, "admin")
            study = db.study
        return page(request, "admin.html", base=f"/admin/{token}", study=study, summary=summarize(db_path))

    @app.get("/admin/{token}/export.json")
    def export_json(token: str):
        with StudyDB(db_path) as db:
            _login(db, token, "admin")
            s = db.study
            items = [dict(r) for r in db.conn.execute("SELECT * FROM items ORDER BY id")]
            return {
                "study": {"a": s.name_a, "b": s.name_b, "source_a": s.source_a, "source_b": s.source_b,
                          "items": s.n_items, "seed": s.seed, "created": s.created},
                "questions": QUESTIONS,
                "annotators": [a.name for a in db.annotators()],
                "items": items,
                "answers": db.answers(),
            }  # fmt: skip

    @app.get("/admin/{token}/export.csv")
    def export_csv(token: str):
        from guard_eval.results.renderers import csv_safe

        with StudyDB(db_path) as db:
            _login(db, token, "admin")
            answers = db.answers()
        out = io.StringIO()
        fields = ["annotator", "item_id", "sample_id", "benchmark", "task", "gold", *QUESTIONS, "swapped", "created"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_safe(v) for k, v in a.items()} for a in answers)  # no spreadsheet formulas
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="human-eval-answers.csv"'})  # fmt: skip

    @app.get("/admin/{token}/report.json")
    def report_json(token: str):
        from guard_eval.human_eval.report import summarize

        with StudyDB(db_path) as db:
            _login(db, token, "admin")
        return summarize(db_path)

    return app
