"""The organisations' own pages: start, register, sign in by an emailed link, edit the profile and
contacts, download the data, delete, my partnerships. Server-rendered (Jinja) in the reader's
language (the "organisations" catalogue).

The forms are validated by the API's own schemas and use cases (services.register_org,
update_org, delete_org): one set of rules. Every form post carries a CSRF token (Flask-WTF); a page
session is a random id in the signed, HttpOnly cookie whose digest Redis keeps, so signing out ends
it everywhere. Nothing personal is shown without a session.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from partnermatch import i18n, vocabulary
from partnermatch.languages import NATIVE_NAMES, PROFILE_LANGUAGES, READER_LANGUAGES, babel_locale, native_names
from partnermatch.mail import mail_address, readable_address
from services.profiles import domain, page_text, services
from services.profiles.adapters.matcher_client import MatcherUnavailable
from services.profiles.adapters.redis_store import NotFound
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.forms import OrgForm
from services.profiles.schemas import OrganisationCreateSchema, OrganisationUpdateSchema
from services.profiles.signin import SigninLinks

logger = logging.getLogger(__name__)
DOMAIN = page_text.DOMAIN

pages = Blueprint(
    "pages", __name__, template_folder="../templates", static_folder="../static", static_url_path="/static"
)


def gettext(message: str, **values: Any) -> str:
    """`message` in the page's language."""
    return i18n.gettext(g.get("lang", i18n.DEFAULT), DOMAIN, message, **values)


def _with_numbers(message: str, **values: Any) -> str:
    """gettext(message), its whole numbers written as the page's language writes them ("50 000")."""
    lang = g.get("lang", i18n.DEFAULT)
    return gettext(message, **{k: i18n.number(lang, v) if type(v) is int else v for k, v in values.items()})


def _deps() -> ProfilesDeps:
    return current_app.extensions["partnermatch.profiles"]


def _settings() -> ProfilesSettings:
    return current_app.config["PM_SETTINGS"]


def _links() -> SigninLinks:
    return current_app.extensions["partnermatch.profiles.signin"]


# ---- every page -------------------------------------------------------------------------------


@pages.before_request
def _before() -> None:
    g.lang = i18n.page_language(request)
    current_app.extensions["csrf"].protect()  # form posts only; the JSON API has none


@pages.after_request
def _after(response: Response) -> Response:
    i18n.remember(response, request, g.get("lang", i18n.DEFAULT))
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


def _signed_in_org() -> dict[str, Any] | None:
    """The organisation of the page session, read once per request (and the contact person it was
    opened for: g.contact_id)."""
    if "org" not in g:
        session_id = session.get("sid")
        found = services.session_of(_deps().store, session_id) if isinstance(session_id, str) else None
        g.org, g.contact_id = found if found is not None else (None, None)
        if session_id and g.org is None:
            session.pop("sid", None)
    return g.org


@pages.app_context_processor
def _template_globals() -> dict[str, Any]:
    if request.blueprint != "pages" and not g.get("page_error"):
        return {}
    lang = g.get("lang", i18n.DEFAULT)
    return {"lang": lang, "languages": i18n.switcher(lang, request.args), "me": _signed_in_org()}


# The signed-in pages a person asked for before signing in that the sign-in link then opens (the
# partnerships emails link to theirs); any other goes to the profile.
AFTER_SIGNIN = frozenset({"pages.profile", "pages.partnerships"})


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        org = _signed_in_org()
        if org is None:
            if request.method == "GET" and request.endpoint in AFTER_SIGNIN:
                session["after_signin"] = request.endpoint  # a link from an email: there once signed in
            flash(gettext("Please sign in first."))
            return redirect(url_for("pages.signin"))
        return view(org, *args, **kwargs)

    return wrapper


def _start_session(org: dict[str, Any], session_id: str) -> None:
    # A fresh cookie: nothing of the anonymous session (its form token) carries over.
    lang = g.get("lang")
    session.clear()
    session["sid"] = session_id
    if lang:
        session["lang"] = lang
    g.org = org


def _principal(org: dict[str, Any]) -> domain.Principal:
    return domain.Principal(domain.ORGANISATION, org_id=org["id"], cluster_id=org["cluster_id"])


# ---- errors -----------------------------------------------------------------------------------


@pages.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> Any:
    logger.info("form post refused: CSRF", extra={"path": request.path, "reason": exc.description})
    # The form comes back as it was sent, with a fresh token: a stale page loses nothing typed.
    expired = gettext("The form had expired. Check it and send it again.")
    if request.endpoint == "pages.register":
        if _registered_here():  # sent again after it registered (Back, then Register): open it
            flash(gettext(page_text.REGISTERED))
            return redirect(url_for("pages.profile"))
        return _org_form_page("pages.register", OrgForm.from_form(request.form), {}, expired, 400)
    org = _signed_in_org() if request.endpoint == "pages.profile" else None
    if org is not None:
        form = OrgForm.from_form(request.form, org.get("contacts") or [])
        form.cluster_id = org["cluster_id"]
        return _org_form_page("pages.profile", form, {}, expired, 400, org)
    return _message_page(
        gettext("The form had expired"), gettext("Go back, reload the page and send the form again."), 400
    )


LIMITER = "partnermatch.profiles.limiter"
EMAIL_LIMIT_KEY = "email:"  # how the sign-in limit per address asked for begins its keys (app.py)


def _wait_text() -> str:
    """Why a 429, and when this client may try again ("in 58 minutes", in the page's language):
    from the limit this request broke (flask-limiter's RequestLimit: its key, and the reset time
    its storage holds). Said vaguely where that cannot be read."""
    from babel.dates import format_timedelta

    vague = gettext("Too many attempts from here. Wait a few minutes and try again.")
    limiter = current_app.extensions.get(LIMITER)
    try:
        limit = limiter.current_limit if limiter is not None else None
        if limit is None or not limit.breached:  # a 429 of no limit of ours
            return vague
        seconds, key = limit.reset_at - time.time(), str(limit.key)
    except Exception:  # noqa: BLE001 - the limiter changed or its store is out of reach: the page still answers
        logger.warning("the breached rate limit's reset time could not be read", exc_info=True)
        return vague
    when = format_timedelta(
        # whole minutes up (89 s: "in 2 minutes", so that trying then works), seconds under one
        datetime.timedelta(seconds=max(1, seconds if seconds < 60 else 60 * math.ceil(seconds / 60))),
        add_direction=True,
        threshold=1.0,  # "in 58 minutes", not "in 1 hour"
        locale=babel_locale(g.get("lang", i18n.DEFAULT)),
    )
    if EMAIL_LIMIT_KEY in key:
        # the limit of the address asked for, reached from anywhere: "from here" would mislead
        return gettext("Too many sign-in links were asked for this address. Try again %(when)s.", when=when)
    return gettext("Too many attempts from here. Try again %(when)s.", when=when)


@pages.errorhandler(429)
def _too_many(exc: Exception) -> Any:
    text = _wait_text()
    if request.endpoint == "pages.register":
        made = _made_by_this_form()
        if made is not None:  # the second click of the registration that reached the limit
            return _open_registered(made, again=True)
        # the form comes back as typed, with what is wrong in it marked: the person can fix it
        # while the limit runs out, not find it only afterwards
        form = OrgForm.from_form(request.form)
        if "add_contact" in request.form:
            return _org_form_page("pages.register", form.with_another_contact(_form_language()), {}, text, 429)
        return _org_form_page("pages.register", form, _validate(form, editing=False)[1], text, 429)
    if request.endpoint == "pages.signin":
        return render_template("signin.html", email=request.form.get("email", "")[:254], error=text), 429
    return _message_page(gettext("Too many attempts"), text, 429)


def page_error(exc: HTTPException) -> Any:
    """A page address that does not exist (mistyped, "/profile/"), or not for this method, as a page
    in the reader's language (httpedge.ExplainingApi asks it for any address outside the API); None
    for other errors, which keep the app's answer."""
    if exc.code not in (404, 405):
        return None
    if "lang" not in g:  # an address no view of the pages took: their hooks have not run
        g.lang = i18n.page_language(request)
    g.page_error = True  # a page of theirs all the same: its language, the switcher, who is signed in
    return _message_page(
        gettext("This page does not exist"), gettext("Check the address, or go back to the start."), exc.code
    )


def _message_page(title: str, text: str, status: int) -> tuple[str, int]:
    return render_template("message.html", title=title, text=text), status


# ---- start, register --------------------------------------------------------------------------


@pages.get("/")
def start() -> Any:
    return render_template("start.html")


def _form_language() -> str:
    """The default language of a new contact person: the page's."""
    return g.get("lang", i18n.DEFAULT)


def _choices() -> dict[str, Any]:
    """What the organisation form offers, labelled in the page's language."""
    lang = g.get("lang", i18n.DEFAULT)
    vocab = vocabulary.vocabulary(lang, fallback_countries=domain.COUNTRIES)
    by_sector: dict[str, list[dict[str, str]]] = {}
    for activity in vocab["activities"]:
        by_sector.setdefault(activity.get("sector", ""), []).append(activity)
    return {
        "clusters": sorted(_deps().store.list_clusters(), key=lambda c: vocabulary.sort_key(c["name"], lang)),
        "countries": vocabulary.country_choices(lang),
        "sectors": vocab["sectors"],
        "activities": by_sector,
        "sought_countries": vocab["countries"],
        "profile_languages": [(code, native_names(lang)[code]) for code in PROFILE_LANGUAGES],
        "reader_languages": [(code, NATIVE_NAMES[code]) for code in READER_LANGUAGES],
        "max_text": _settings().max_text_chars,
    }


FORM_ID = re.compile(r"[A-Za-z0-9_-]{22}")
# A registration form sent again within this long of the first opens the organisation it made (a
# double click, a retry on a slow line); a copy of this browser's old cookie must not open it later.
FORM_SENT_AGAIN_MS = 120_000
# The language switcher's buttons on the organisation form's pages (base.html) send the form with
# this field: the page comes back in the language chosen (its address's `lang`), as typed.
SWITCH_LANGUAGE = "switch_lang"


def _form_id() -> str:
    """The registration form's own id: the one it was sent with (kept when it comes back with its
    errors), else a new one."""
    sent = request.form.get("form_id", "")
    return sent if FORM_ID.fullmatch(sent) else secrets.token_urlsafe(16)


def _registration_id() -> str:
    """The id of the organisation a registration form makes, drawn from the form's id and this
    browser's session (its form-token secret): the same form sent twice names one organisation, and
    nobody without this browser's cookie can name it. A new id for a form without one."""
    sent, secret = request.form.get("form_id", ""), session.get("csrf_token")
    if not FORM_ID.fullmatch(sent) or not secret:
        return domain.new_org_id()
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, f"register\0{secret}\0{sent}".encode(), hashlib.sha256).hexdigest()
    return "org_" + digest[:16]


def _org_form_page(
    endpoint: str,
    form: OrgForm,
    errors: dict[str, list[str]],
    summary: str | None,
    status: int,
    org: dict[str, Any] | None = None,
) -> tuple[str, int]:
    template = "register.html" if endpoint == "pages.register" else "profile.html"
    form_id = _form_id() if endpoint == "pages.register" else None
    return render_template(
        template, form=form, errors=errors, summary=summary, org=org, form_id=form_id, **_choices()
    ), status


def _validate(form: OrgForm, editing: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The API body of a posted form and its errors in the page's language, by form field."""
    body, rows = form.to_api(editing)
    schema = OrganisationUpdateSchema() if editing else OrganisationCreateSchema()
    try:
        data = schema.load(body)
        messages: dict[str, Any] = services.text_size_errors(data, _settings().max_text_chars)
    except ValidationError as exc:
        # the texts' size too, at once: else a text too long is told only once the rest is right
        too_long = services.text_size_errors(body, _settings().max_text_chars)
        data, messages = {}, {**too_long, **exc.messages}  # type: ignore[dict-item]
    errors = page_text.page_errors(messages, _with_numbers, rows)
    if not body["contacts"] and "contacts" not in errors:
        errors["contacts"] = [gettext(page_text.NEED_A_CONTACT)]
    return data, dict(sorted(errors.items(), key=lambda item: _FORM_ORDER.get(item[0].split("-")[0], 99)))


# The order of the form, so the summary of errors reads from top to bottom.
_FORM_ORDER = {
    name: i
    for i, name in enumerate(
        (
            "name",
            "cluster_id",
            "country",
            "language",
            "capabilities",
            "goals",
            "website",
            "sectors",
            "offers",
            "seeks",
            "seeks_countries",
            "contacts",
        )
    )
}


def _errors_summary(errors: dict[str, list[str]]) -> str | None:
    return gettext("Please correct the marked fields.") if errors else None


@pages.route("/register", methods=["GET", "POST"])
def register() -> Any:
    if request.method == "GET":
        return _org_form_page("pages.register", OrgForm.blank(_form_language()), {}, None, 200)
    form = OrgForm.from_form(request.form)
    if "add_contact" in request.form:
        return _org_form_page("pages.register", form.with_another_contact(_form_language()), {}, None, 200)
    if SWITCH_LANGUAGE in request.form:  # the page's language changed: the form as typed, in it
        return _org_form_page("pages.register", form, {}, None, 200)
    data, errors = _validate(form, editing=False)
    if not errors:
        org_id = _registration_id()
        try:
            org, _token = services.register_org(_deps().store, data, org_id)
        except services.UnknownCluster:
            errors = {"cluster_id": [gettext(page_text.NO_SUCH_CLUSTER)]}
        except services.Conflict:
            # this form was sent before, from this browser: the organisation it made, not a second
            # one, when that was a moment ago (a double click, a retry while the first was on its
            # way); later, or deleted since, the way in is to sign in
            made = _made_by_this_form()
            if made is None:
                logger.info("registration form sent again too late: sent to sign in", extra={"org_id": org_id})
                flash(gettext("This form was sent before: its organisation is registered. Sign in to edit it."))
                return redirect(url_for("pages.signin"))
            return _open_registered(made, again=True)
    if errors:
        return _org_form_page("pages.register", form, errors, _errors_summary(errors), 422)
    g.registered = True  # counted toward the limit (app.py)
    return _open_registered(org)


def _open_registered(org: dict[str, Any], again: bool = False) -> Any:
    """The organisation a registration made, opened to whoever registered it (the same as the API,
    which answers with its token); the form's id is kept in the session, so the form sent again from
    this browser (Back, then Register) opens it rather than making another."""
    if again:
        logger.info("registration form sent again: its organisation opened", extra={"org_id": org["id"]})
    form_id = request.form.get("form_id", "")
    _start_session(org, services.open_session(_deps().store, org, None, _settings().page_session_ttl_s))
    if FORM_ID.fullmatch(form_id):
        session["registered_form"] = form_id
    flash(gettext(page_text.REGISTERED))
    return redirect(url_for("pages.profile"))


def _made_by_this_form() -> dict[str, Any] | None:
    """The organisation this registration form made from this browser a moment ago (within
    FORM_SENT_AGAIN_MS), if any."""
    if not FORM_ID.fullmatch(request.form.get("form_id", "")) or not session.get("csrf_token"):
        return None
    made = _deps().store.get_org(_registration_id())
    if made is None or time.time() * 1000 - made.get("created_ms", 0) > FORM_SENT_AGAIN_MS:
        return None
    return made


def _registered_here() -> bool:
    """This registration form registered an organisation from this browser, which is signed in to
    it still (the session keeps the form's id)."""
    sent = request.form.get("form_id", "")
    return bool(sent) and sent == session.get("registered_form") and _signed_in_org() is not None


# ---- sign in, sign out ------------------------------------------------------------------------


def _link_url(public_url: str, token: str, language: str) -> str:
    """A sign-in link's address: the configured public URL, never the request's Host header."""
    query = urlencode({"lang": language}) if language in READER_LANGUAGES else ""
    return f"{public_url}/signin/{token}" + (f"?{query}" if query else "")


@pages.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    if request.method == "GET":
        return render_template("signin.html", email="", error=None)
    email = (request.form.get("email") or "").strip()[:254]
    if "@" not in email:
        return render_template(
            "signin.html",
            email=email,
            error=gettext("Enter an email address such as %(example)s.", example="name@example.org"),
        ), 422
    # Looked up and sent once the answer is out, outside this request: the answer is the same, and
    # as fast, for any address. The work takes everything it needs along.
    deps, links, public_url = _deps(), _links(), _settings().public_url
    mailer = deps.signin_mailer
    assert mailer is not None  # create_app provides one
    response = make_response(
        render_template("signin_sent.html", email=email, minutes=max(1, _settings().signin_link_ttl_s // 60))
    )
    response.call_on_close(
        lambda: deps.background.submit(
            lambda: services.request_signin(deps.store, links, mailer, email, functools.partial(_link_url, public_url))
        )
    )
    return response


@pages.route("/signin/<token>", methods=["GET", "POST"])
def signin_link(token: str) -> Any:
    # Opening the link only asks to confirm: mail scanners that follow links do not use it up.
    if request.method == "GET":
        org = services.signin_link_org(_deps().store, _links(), token)
        if org is None:
            return _link_refused()
        return render_template("signin_link.html", org=org, token=token)
    opened = services.use_signin_link(_deps().store, _links(), token, _settings().page_session_ttl_s)
    if opened is None:
        return _link_refused()
    session_id, org = opened
    after = session.get("after_signin")
    _start_session(org, session_id)
    flash(gettext("You are signed in."))
    return redirect(url_for(after if after in AFTER_SIGNIN else "pages.profile"))


def _link_refused() -> tuple[str, int]:
    return _message_page(
        gettext("This link does not work any more"),
        gettext("Sign-in links work once and for a short time. Ask for a new one."),
        410,
    )


@pages.post("/signout")
def signout() -> Any:
    session_id = session.get("sid")
    if isinstance(session_id, str):
        services.close_session(_deps().store, session_id)
    session.clear()
    flash(gettext("You are signed out."))
    return redirect(url_for("pages.start"))


# ---- the signed-in pages ----------------------------------------------------------------------


@pages.route("/profile", methods=["GET", "POST"])
@signed_in
def profile(org: dict[str, Any]) -> Any:
    if request.method == "GET":
        return _org_form_page("pages.profile", OrgForm.from_org(org), {}, None, 200, org)
    form = OrgForm.from_form(request.form, org.get("contacts") or [])
    form.cluster_id = org["cluster_id"]
    if "add_contact" in request.form:
        return _org_form_page("pages.profile", form.with_another_contact(_form_language()), {}, None, 200, org)
    if SWITCH_LANGUAGE in request.form:
        return _org_form_page("pages.profile", form, {}, None, 200, org)
    data, errors = _validate(form, editing=True)
    if errors:
        return _org_form_page("pages.profile", form, errors, _errors_summary(errors), 422, org)
    session_id = session.get("sid")
    me = g.get("contact_id")  # read with the session by @signed_in
    try:
        saved = services.update_org(_deps().store, _principal(org), org["id"], data)
    except NotFound:
        session.clear()
        return redirect(url_for("pages.start"))
    moved = _own_address_changed(form, me, org, saved)
    if moved is not None and isinstance(session_id, str):
        # the person signed in corrected their own address: still them, signed in, now as that address
        contact_id, email = moved
        moved_id = services.move_session(_deps().store, session_id, saved, contact_id)
        if moved_id is not None:
            _start_session(saved, moved_id)
            flash(gettext("Saved. Sign-in links now go to %(email)s.", email=readable_address(email)))
            return redirect(url_for("pages.profile"))
    if not isinstance(session_id, str) or services.session_org(_deps().store, session_id) is None:
        # The person signed in removed themselves as a contact: the store ended their sessions.
        session.clear()
        flash(gettext("Saved. You are no longer a contact person of this organisation, so your session has ended."))
        return redirect(url_for("pages.start"))
    flash(gettext("Saved."))
    return redirect(url_for("pages.profile"))


def _own_address_changed(
    form: OrgForm, me: str | None, before: dict[str, Any], saved: dict[str, Any]
) -> tuple[str, str] | None:
    """The contact id and address of the person signed in (`me`) when the form changed their own
    row's address: the one row that was theirs, kept, its address now stored under a contact that
    did not exist before, and theirs gone. Else None: taking a colleague's address, or a second row
    posted with one's own id, is no move (the session then stays while its contact does, as after any
    other change)."""
    if me is None:
        return None
    rows = [r for r in form.contacts if r.id == me]
    if len(rows) != 1 or rows[0].remove:
        return None
    try:
        address = mail_address(rows[0].email.strip())  # as the schema stored it
    except ValueError:
        return None
    now = domain.contact_id(saved["id"], address)
    saved_ids = {c.get("id") for c in saved.get("contacts") or []}
    if now == me or me in saved_ids or now not in saved_ids:
        return None
    if now in {c.get("id") for c in before.get("contacts") or []}:
        return None
    stored = next(c for c in saved.get("contacts") or [] if c.get("id") == now)
    return now, stored["email"]


@pages.get("/profile/data")
@signed_in
def download(org: dict[str, Any]) -> Response:
    exported = services.export_org(_deps().store, org["id"])
    body = json.dumps(exported, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="partnermatch-{org["id"]}.json"'},
    )


@pages.route("/profile/delete", methods=["GET", "POST"])
@signed_in
def delete(org: dict[str, Any]) -> Any:
    if request.method == "GET":
        return render_template("delete.html", org=org, error=None)
    if request.form.get("confirm") != "yes":
        return render_template(
            "delete.html", org=org, error=gettext("Tick the box to confirm that the organisation is to be deleted.")
        ), 422
    try:
        services.delete_org(_deps().store, _principal(org), org["id"])
    except NotFound:
        pass
    session.clear()  # its page sessions are gone with it (the store revokes them)
    flash(gettext("%(name)s and its contact persons are deleted.", name=org["name"]))
    return redirect(url_for("pages.start"))


@pages.get("/partnerships")
@signed_in
def partnerships(org: dict[str, Any]) -> Any:
    try:
        items = services.my_partnerships(_deps().store, _deps().matcher, org["id"], g.lang)
        unavailable = False
    except MatcherUnavailable:
        items, unavailable = [], True
    except NotFound:
        abort(404)
    return render_template(
        "partnerships.html",
        partnerships=items,
        unavailable=unavailable,
        countries=dict(vocabulary.country_choices(g.lang)),
    )
