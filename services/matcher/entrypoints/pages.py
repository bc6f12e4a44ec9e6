"""The coordinators' web page: log in, review the queue, approve or reject, see decided history.

Server-rendered HTML in the reader's language (the "coordinators" message catalogue: `?lang=`, a
remembered choice, else the browser's); every form carries a CSRF token bound to the session; the
session cookie is HttpOnly and SameSite=Lax and holds only random values: the coordinator's login
token is kept in Redis (adapters/page_sessions.py) and revoked at logout. Logins are checked by
the profiles service (passwords are hashed there, never stored here); failed ones are limited per
client address here and per account there.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from partnermatch import i18n, vocabulary
from partnermatch.languages import PROFILE_LANGUAGES, native_names
from partnermatch.reasons import REJECTION_LABELS
from services.matcher.adapters.page_sessions import PageSessions
from services.matcher.adapters.profiles_client import LoginThrottled, ProfilesUnavailable
from services.matcher.analytics import ClusterFigures, listing_csv
from services.matcher.review import REJECTION_REASONS, DecisionRefused
from services.matcher.schemas import SuggestionQuerySchema
from services.matcher.ui_text import DOMAIN, STATE_LABELS

logger = logging.getLogger(__name__)

# The flash category of a message that says something went otherwise than asked (base.html shows it
# apart from the messages that confirm)
WARNING = "warning"

pages = Blueprint(
    "pages", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static"
)


def _deps():
    return current_app.extensions["partnermatch.matcher"]


def _sessions() -> PageSessions:
    found = current_app.extensions.get("partnermatch.page_sessions")
    if found is None:
        found = current_app.extensions["partnermatch.page_sessions"] = PageSessions(_deps().state.r)
    return found


def _current_language() -> str:
    return g.get("lang") or i18n.DEFAULT


def _(message: str, **values: Any) -> str:
    """A text of this page in the reader's language."""
    return i18n.gettext(_current_language(), DOMAIN, message, **values)


@pages.record_once
def _install_messages(state: BlueprintSetupState) -> None:
    i18n.install(state.app.jinja_env, DOMAIN, _current_language)


@pages.before_app_request
def _choose_language() -> None:
    if request.blueprint == "pages":
        g.lang = i18n.page_language(request)


@pages.after_app_request
def _remember_language(response):
    if request.blueprint == "pages" and "lang" in g:
        i18n.remember(response, request, g.lang)
    return response


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@pages.before_app_request
def _check_csrf() -> Any:
    if request.method == "POST" and request.blueprint == "pages":
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
            if "sid" not in session and request.endpoint in ("pages.decide", "pages.withdraw"):
                # Logged out meanwhile (in another tab: the cookie, with its form token, is gone):
                # nothing is done, as for any refused form, and the login returns to the page.
                return _session_ended(request.form.get("next"))
            abort(400, description=_("The form expired or was not sent from this page; reload and try again."))
    return None


@pages.app_context_processor
def _template_globals() -> dict[str, Any]:
    lang = _current_language()
    return {
        "lang": lang,
        "languages": i18n.switcher(lang, request.args),
        "reason_labels": REJECTION_LABELS,
        "state_labels": STATE_LABELS,
        "csrf_token": _csrf_token,
        "cluster_name": _cluster_name,
        "country_name": functools.partial(vocabulary.country_name, lang),
        "number": functools.partial(i18n.number, lang),
        "language_names": native_names(lang),  # each language by its own name (Serbian in the page's script)
    }


def _cluster_name(cluster_id: str | None) -> str:
    """A cluster by its name, as profiles has it (read once a request, and kept a while by the
    client); by its id when profiles does not know it or cannot answer."""
    if not cluster_id:
        return ""
    names = g.get("cluster_names")
    if names is None or cluster_id not in names:  # the client reads them again when due, or one is new
        names = g.cluster_names = _deps().auth.cluster_names(cluster_id)
    return str(names.get(cluster_id) or cluster_id)


def _coordinator() -> dict[str, Any] | None:
    token = _sessions().token(session.get("sid"))
    if not token:
        return None
    try:
        caller = _deps().auth.whoami(token)
    except ProfilesUnavailable:
        abort(503, description=_("Cannot check your login right now; try again shortly."))
    if caller is None or caller.role != "coordinator":
        _sessions().close(session.pop("sid", None))
        return None
    return {"username": caller.username, "cluster_id": caller.cluster_id}


@pages.get("/")
def index():
    return redirect(url_for("pages.queue"))


@pages.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")[:100]
        password = request.form.get("password", "")[:200]
        try:
            result = _deps().auth.login(username, password) if username and password else None
        except ProfilesUnavailable:
            abort(503, description=_("Cannot check your login right now; try again shortly."))
        except LoginThrottled as throttled:
            return _too_many_logins(throttled.retry_after_s)
        if result is not None:
            session.clear()
            sid = _sessions().open(result["token"], int(result.get("expires_in") or 3600))
            session.update(sid=sid, csrf=secrets.token_urlsafe(32))  # a new form token with the new session
            response = redirect(_back_to(request.form.get("next")))
            preferred = result.get("language")
            if preferred in i18n.READER_LANGUAGES and i18n.COOKIE not in request.cookies:
                # Pages open in the coordinator's stored language from now on, unless one was chosen.
                response.set_cookie(
                    i18n.COOKIE,
                    preferred,
                    max_age=365 * 24 * 3600,
                    samesite="Lax",
                    httponly=True,
                    secure=request.is_secure,
                )
            return response
        error = _("Wrong username or password.")
    return render_template("login.html", error=error, next=_local(request.values.get("next"))), (401 if error else 200)


def _local(target: str | None) -> str | None:
    """`target` where it is a path of this app with its query ("/queue?country=RS"), as the forms
    send back the page they were on; None for anything else (another site's address above all)."""
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):  # no header may carry them (CR, LF, tab)
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _back_to(target: str | None) -> str:
    """Where a form returns to: the page it was sent from (its filters and page kept), else the queue."""
    local = _local(target)
    return request.script_root + local if local else url_for("pages.queue")


def _session_ended(target: str | None):
    """A form sent after the session ended (logged out elsewhere, or expired): nothing was done;
    say so, and return to that page after the login."""
    flash(_("Your session ended, so nothing was saved. Log in and try again."), WARNING)
    local = _local(target)
    return redirect(url_for("pages.login", next=local) if local else url_for("pages.login"))


def _too_many_logins(retry_after_s: int):
    minutes = max(1, -(-retry_after_s // 60))
    error = _("Too many failed logins. Try again in %(minutes)s minutes.", minutes=minutes)
    response = current_app.make_response((render_template("login.html", error=error), 429))
    response.headers["Retry-After"] = str(retry_after_s)
    return response


@pages.post("/pairs/<pair_id>/withdraw")
def withdraw(pair_id: str):
    me = _coordinator()
    if me is None:
        return _session_ended(request.form.get("next"))
    try:
        _deps().review.withdraw_approval(me["cluster_id"], me["username"] or "?", pair_id)
        flash(_("Your cluster's approval is withdrawn."))
    except DecisionRefused as refused:
        state = (refused.pair or {}).get("state")
        if refused.reason == "not_pending" and state in ("approved", "rejected"):
            flash(_("This approval can no longer be withdrawn: the other cluster has decided."), WARNING)
        elif refused.reason == "nothing_to_withdraw":
            flash(_("Your cluster has no approval to withdraw."), WARNING)
        else:  # the pair is gone
            flash(
                _("This suggestion is no longer waiting for a decision: an organisation changed or was deleted."),
                WARNING,
            )
    return redirect(_back_to(request.form.get("next")))


@pages.errorhandler(HTTPException)
def _error_page(exc: HTTPException):
    """Errors of the page are pages in the reader's language, never the API's JSON."""
    if exc.code == 429:
        return _login_rate_limited(exc)
    titles = {
        400: _("This request could not be handled."),
        404: _("This suggestion or page does not exist, or not any more."),
        503: _("Not available right now."),
    }
    title = titles.get(exc.code or 500, _("Something went wrong."))
    text = exc.description if exc.description and exc.description != type(exc).description else None
    me = None
    if exc.code != 503:
        try:
            me = _coordinator()
        except HTTPException:
            me = None
    return render_template("error.html", title=title, text=text, me=me), exc.code or 500


def page_error(exc: HTTPException):
    """An error of an address outside the API that no view of the pages took (a mistyped one): the
    pages' error page, in the reader's language (httpedge.ExplainingApi asks it)."""
    if exc.code not in (404, 405):  # other errors outside a page keep the app's answer
        return None
    if "lang" not in g:
        g.lang = i18n.page_language(request)
    return _error_page(exc)


@pages.errorhandler(429)
def _login_rate_limited(exc):
    """Too many failed logins from this address (Flask-Limiter): the login page, saying how long."""
    limit = getattr(exc, "limit", None)
    window = limit.limit.get_expiry() if limit is not None else 900
    return _too_many_logins(int(window))


@pages.post("/logout")
def logout():
    """Ends the page session and revokes the login token it held, so neither the old cookie nor
    the token opens anything any more."""
    token = _sessions().close(session.get("sid"))
    session.clear()
    if token:
        try:
            _deps().auth.logout(token)
        except ProfilesUnavailable:
            # The page session is gone already; the token expires on its own at profiles.
            logger.warning("logout: profiles unreachable, the login token was not revoked there")
    return redirect(url_for("pages.login"))


PAGE_SIZE = 20


def _query(default_state: str) -> dict[str, Any]:
    """The listing's filters from the address (the API's own query model, so a view can be
    bookmarked and the API asked the same); a value it refuses is left out rather than failing
    (_refused_filters names them)."""
    return _read_query(default_state)[0]


def _read_query(default_state: str) -> tuple[dict[str, Any], dict[str, str]]:
    """_query's filters, and the values it left out, by field, as they were typed."""
    wanted = {k: v.strip() for k, v in request.args.items() if k in _QUERY_FIELDS and v.strip()}
    # as people type them: "rs" for RS, and a decimal comma (most of our readers' keyboards)
    if "country" in wanted:
        wanted["country"] = wanted["country"].upper()
    for name in ("min_score", "max_score"):
        if name in wanted:
            wanted[name] = wanted[name].replace(",", ".")
    wanted.setdefault("state", default_state)
    wanted.setdefault("sort", "score" if wanted["state"] == "pending" else "date")
    schema = SuggestionQuerySchema()
    refused: dict[str, str] = {}
    try:
        query = schema.load(wanted)
    except ValidationError as invalid:
        refused = {k: request.args.get(k, "").strip() for k in invalid.messages if k in wanted}
        query = schema.load({k: v for k, v in wanted.items() if k not in invalid.messages})
    query.pop("lang", None)
    return query, refused


_QUERY_FIELDS = ("state", "sort", "country", "language", "sector", "min_score", "max_score", "q", "mine")


def _listing(default_state: str):
    lang = _current_language()
    me = _coordinator()
    if me is None:
        return redirect(url_for("pages.login"))
    query, refused = _read_query(default_state)
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    items, total = _deps().review.list_for_cluster(
        me["cluster_id"], lang=lang, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **query
    )
    pages_count = max(1, -(-total // PAGE_SIZE))
    if page > pages_count:
        page = pages_count
        items, total = _deps().review.list_for_cluster(
            me["cluster_id"], lang=lang, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, **query
        )
    kept = {k: v for k, v in request.args.items() if k in _QUERY_FIELDS and v.strip()}
    return render_template(
        "queue.html",
        items=items,
        total=total,
        me=me,
        state=query["state"],
        query=query,
        refused=refused,  # typed, not understood: shown back with a word, not silently dropped
        refused_shown=", ".join(f"“{typed}”" for typed in refused.values()),
        page=page,
        pages=pages_count,
        kept=kept,
        reasons=REJECTION_REASONS,
        endpoint=request.endpoint,
        languages_of_profiles=PROFILE_LANGUAGES,
        sectors=vocabulary.vocabulary(lang)["sectors"],
        countries=vocabulary.country_choices(lang),  # every country, by name in the page's language
    )


@pages.get("/queue")
def queue():
    return _listing("pending")


@pages.get("/history")
def history():
    return _listing("decided")


@pages.get("/export.csv")
def export_csv():
    """The listing's pairs as CSV, with the listing's own filters (?state=decided for the history)."""
    me = _coordinator()
    if me is None:
        return redirect(url_for("pages.login"))
    query = _query(request.args.get("state") or "pending")
    items, _total = _deps().review.list_for_cluster(
        me["cluster_id"], lang=_current_language(), offset=0, limit=1_000_000, **query
    )
    name = f"partnermatch-{me['cluster_id']}-{query['state']}.csv"
    # A byte order mark first: spreadsheets (Excel above all) then read the names as UTF-8, not as
    # the locale's code page (Polish and Cyrillic names garbled otherwise).
    return Response(
        "\ufeff" + listing_csv(items, _cluster_name, functools.partial(vocabulary.country_name, _current_language())),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@pages.get("/analytics")
def analytics():
    me = _coordinator()
    if me is None:
        return redirect(url_for("pages.login"))
    found = _deps().review.analytics(me["cluster_id"], int(time.time() * 1000))
    return render_template("analytics.html", me=me, figures=found, chart=_week_chart(found))


def _week_chart(found: ClusterFigures) -> dict[str, Any]:
    """Bars of a server-drawn SVG: per week, suggested, approved and rejected side by side."""
    top = max([1] + [max(w.suggested, w.approved, w.rejected) for w in found.weeks])
    height, bar, gap = 120, 8, 10
    bars = []
    for i, week in enumerate(found.weeks):
        x = i * (3 * bar + gap)
        for j, (kind, value) in enumerate(
            (("suggested", week.suggested), ("approved", week.approved), ("rejected", week.rejected))
        ):
            h = round(height * value / top)
            bars.append({"x": x + j * bar, "y": height - h, "h": h, "kind": kind, "value": value, "week": week.start})
    return {"bars": bars, "width": len(found.weeks) * (3 * bar + gap), "height": height, "top": top}


@pages.get("/pairs/<pair_id>")
def pair(pair_id: str):
    lang = _current_language()
    me = _coordinator()
    if me is None:
        return redirect(url_for("pages.login"))
    view = _deps().review.read(me["cluster_id"], pair_id, lang)
    if view is None:
        abort(404)
    return render_template("pair.html", item=view, me=me, reasons=REJECTION_REASONS)


@pages.post("/pairs/<pair_id>/decide")
def decide(pair_id: str):
    me = _coordinator()
    if me is None:
        return _session_ended(request.form.get("next"))
    decision = request.form.get("decision")
    reason_code = request.form.get("reason_code") or None
    reason_text = (request.form.get("reason_text") or "").strip()[:1000] or None
    if decision not in ("approve", "reject") or (decision == "reject" and reason_code not in REJECTION_REASONS):
        abort(400, description=_("Choose approve, or reject with a reason."))
    try:
        _deps().review.decide(
            me["cluster_id"],
            me["username"] or "?",
            pair_id,
            decision,
            reason_code if decision == "reject" else None,
            reason_text,
        )
        flash(_("Your decision is saved."))
    except DecisionRefused as refused:
        if refused.reason == "not_found" or (refused.pair or {}).get("state") == "withdrawn":
            # withdrawn (an organisation changed or was deleted) or never ours: say so where they were
            flash(
                _("This suggestion is no longer waiting for a decision: an organisation changed or was deleted."),
                WARNING,
            )
        else:
            flash(_("This suggestion was already decided."), WARNING)
    return redirect(_back_to(request.form.get("next")))
