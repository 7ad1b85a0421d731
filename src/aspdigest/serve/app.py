"""The subscriber service as a Starlette application: unsubscribe, sign-up, confirm.

The end of the flow that readers touch (`DESIGN.md`: subscriber service ◀─▶ store).
`create_app(project, event, environ)` returns the ASGI app; `aspdigest serve` runs it under
uvicorn and `aspdigest.serve:app` builds it from the environment for any ASGI server.

Routes (the unsubscribe path is the one `email.unsubscribe_url` names, with the token in
the path or in the query, so pointing that URL at the service is all a team does):
- `POST <unsubscribe>` with `List-Unsubscribe=One-Click` (RFC 8058): suppresses the token's
  subscriber at once, idempotent, 200, no cookie or CSRF (mail providers post it blind).
- `GET <unsubscribe>`: a page naming the list with an Unsubscribe button; changes nothing,
  since mail scanners fetch every link.
- `POST /resubscribe/{token}`: mails a confirmation link to the unsubscribed reader.
- `GET|POST /subscribe`: the sign-up form (CSRF double submit, Origin check, rate limits per
  client and per address); the same answer whether the address is known or not.
- `GET|POST /confirm/{token}`: a page with a Confirm button; the POST makes the subscriber
  active (never an address suppressed as `complained`).
- `GET /healthz`: 200 when the store answers.
A forged, truncated or expired token gets 400 and a plain page; nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from aspdigest.config import Project
from aspdigest.deliver.dkim import Signer, signer
from aspdigest.deliver.smtp import SmtpTarget, smtp_target
from aspdigest.errors import UserError
from aspdigest.records import known_language
from aspdigest.safetext import text_problem
from aspdigest.serve import pages
from aspdigest.serve.guard import Csrf, Guard, RateLimit
from aspdigest.serve.mail import confirmation, send_confirmation
from aspdigest.serve.pages import Look
from aspdigest.store import Store, Subscriber
from aspdigest.subscribers import is_address
from aspdigest.tokens import Keys, keys, make_token, verify_token

CONFIRM_SECONDS = 48 * 3600
ONE_CLICK = "One-Click"


@dataclass(frozen=True)
class Route_:
    """Where the unsubscribe links point, read from email.unsubscribe_url."""

    path: str  # a Starlette path, `{token}` as a path parameter when the URL has it there
    query: str | None  # the query parameter holding the token, when it is not in the path
    origin: str  # scheme://host[:port] of the public URL, for the links the service mails


def unsubscribe_route(url: str | None) -> Route_:
    if not url:
        raise UserError(
            "aspdigest.toml: email.unsubscribe_url: not set; the service answers at that URL, "
            'e.g. unsubscribe_url = "https://digest.your-domain.org/unsubscribe?token={token}"'
        )
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if "{token}" in parts.path:
        return Route_(parts.path, None, origin)
    for name, values in parse_qs(parts.query).items():
        if "{token}" in values:
            return Route_(parts.path or "/", name, origin)
    raise UserError(
        f'aspdigest.toml: email.unsubscribe_url: expected {{token}} in the URL, got "{url}"'
    )


@dataclass
class Service:
    project: Project
    store: Store
    keys: Keys
    look: Look
    route: Route_
    smtp: SmtpTarget | None
    dkim: Signer | None
    sender: str
    clock: Callable[[], float]
    per_client: RateLimit
    per_address: RateLimit

    @property
    def list_id(self) -> str:
        return self.project.settings.email.list_name

    def subscriber_for(self, token: str, purpose: str) -> tuple[bool, Subscriber | None]:
        token_id = verify_token(token, self.keys, self.list_id, purpose, now=self.clock())
        if token_id is None:
            return False, None
        return True, self.store.subscriber(token_id=token_id)

    def unsubscribe_link(self, token: str) -> str:
        if self.route.query is None:
            return self.route.path.replace("{token}", token)
        return f"{self.route.path}?{self.route.query}={token}"

    def confirm_mail(self, person: Subscriber) -> BackgroundTask | None:
        """The confirmation mail for `person`, as a task to run after the answer, or None
        when this address has had its share of mails for now."""
        if self.smtp is None or not self.per_address.allow(person.address):
            return None
        expires = int(self.clock()) + CONFIRM_SECONDS
        token = make_token(person.token_id, self.keys.current, self.list_id, "confirm", expires)
        link = f"{self.route.origin}/confirm/{token}"
        data = confirmation(
            self.project, self.look.list_name, person.address, person.language, link
        )
        bounce = make_token(person.token_id, self.keys.current, self.list_id, "bounce")
        sender = self.sender.replace("{token}", bounce)  # VERP, when email.return_path has it
        return BackgroundTask(
            send_confirmation, self.project, self.smtp, self.dkim, sender, person.address, data
        )


def _html(body: str, status: int = 200, background: BackgroundTask | None = None) -> Response:
    return HTMLResponse(body, status, background=background)


def _bad_link(service: Service) -> Response:
    return _html(pages.message_page(service.look, "bad_link_title", "bad_link_body"), 400)


def _token(request: Request, service: Service) -> str:
    if service.route.query is None:
        return str(request.path_params.get("token", ""))
    return request.query_params.get(service.route.query, "")


async def unsubscribe(request: Request) -> Response:
    service: Service = request.app.state.service
    token = _token(request, service)
    valid, person = await run_in_threadpool(service.subscriber_for, token, "unsubscribe")
    if not valid:
        return _bad_link(service)
    look = service.look.with_language(person.language if person else None)
    if person is None:  # a valid link of a team's test copy, or a removed subscriber
        return _html(pages.not_listed_page(look))
    resubscribe = f"/resubscribe/{token}"
    if request.method == "GET":
        suppressed = await run_in_threadpool(service.store.suppression, person.address)
        if suppressed is not None:
            return _html(pages.unsubscribed_page(look, person.address, resubscribe))
        return _html(pages.unsubscribe_page(look, service.unsubscribe_link(token), person.address))
    # RFC 8058 names the body; a mail provider may send it urlencoded or as multipart.
    form = await request.form()
    if form.get("List-Unsubscribe") != ONE_CLICK:
        return _html(pages.unsubscribe_page(look, service.unsubscribe_link(token), person.address))
    await run_in_threadpool(
        service.store.suppress, person.address, "unsubscribed", "one-click unsubscribe"
    )
    return _html(pages.unsubscribed_page(look, person.address, resubscribe))


def _same_origin(request: Request) -> bool:
    """A form post from the service's own pages. A browser says where a post comes from in
    Sec-Fetch-Site and Origin; either naming another site refuses it. A client that sends
    neither is no browser, and the CSRF token still has to match."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return fetch_site == "same-origin" or fetch_site is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


def _forbidden(service: Service) -> Response:
    return _html(pages.message_page(service.look, "forbidden_title", "forbidden_body"), 403)


def _too_many(service: Service) -> Response:
    return _html(pages.message_page(service.look, "too_many_title", "too_many_body"), 429)


def _check_inbox(service: Service, task: BackgroundTask | None) -> Response:
    return _html(pages.message_page(service.look, "check_title", "check_body"), 200, task)


async def resubscribe(request: Request) -> Response:
    service: Service = request.app.state.service
    if not _same_origin(request):
        return _forbidden(service)
    valid, person = await run_in_threadpool(
        service.subscriber_for, str(request.path_params["token"]), "unsubscribe"
    )
    if not valid:
        return _bad_link(service)
    if not service.per_client.allow(_client(request)):
        return _too_many(service)
    task = None
    if person is not None:
        suppressed = await run_in_threadpool(service.store.suppression, person.address)
        if suppressed is None or suppressed.reason != "complained":
            task = service.confirm_mail(person)
    return _check_inbox(service, task)


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


async def subscribe(request: Request) -> Response:
    service: Service = request.app.state.service
    csrf: Csrf = request.app.state.csrf
    if request.method == "GET":
        token = csrf.make()
        response = _html(pages.subscribe_page(service.look, token))
        response.set_cookie(
            Csrf.COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/subscribe",
        )
        return response
    if not _same_origin(request):
        return _forbidden(service)
    form = await request.form()
    field = form.get("csrf")
    if not csrf.check(request.cookies.get(Csrf.COOKIE), field if isinstance(field, str) else None):
        return _forbidden(service)
    if not service.per_client.allow(_client(request)):
        return _too_many(service)
    email, name, language = (str(form.get(k) or "").strip() for k in ("email", "name", "language"))
    error = None
    if not is_address(email) or len(email) > 320:
        error = "email: expected an address like name@example.org"
    elif name and (len(name) > 200 or text_problem(name, single_line=True)):
        error = "name: not a name that can go in an email header"
    elif language and language not in pages.LANGUAGES and not known_language(language):
        error = "language: not a known language"
    if error is not None:
        assert isinstance(field, str)
        page = pages.subscribe_page(
            service.look, field, email=email, name=name, language=language, error=error
        )
        return _html(page, 400)
    task = await run_in_threadpool(_sign_up, service, email, name or None, language or None)
    return _check_inbox(service, task)


def _sign_up(
    service: Service, email: str, name: str | None, language: str | None
) -> BackgroundTask | None:
    store = service.store
    suppressed = store.suppression(email)
    if suppressed is not None and suppressed.reason == "complained":
        return None  # never re-added by a form; the answer is the same
    person = store.sign_up(email, name, language)
    if person.status == "active" and suppressed is None:
        return None  # already receiving it
    return service.confirm_mail(person)


async def confirm(request: Request) -> Response:
    service: Service = request.app.state.service
    token = str(request.path_params["token"])
    valid, person = await run_in_threadpool(service.subscriber_for, token, "confirm")
    if not valid or person is None:
        return _bad_link(service)
    look = service.look.with_language(person.language)
    if request.method == "GET":
        return _html(pages.confirm_page(look, f"/confirm/{token}", person.address))
    if not _same_origin(request):
        return _forbidden(service)
    outcome = await run_in_threadpool(service.store.confirm, person.token_id)
    if outcome == "complained":
        return _html(
            pages.page(look, look.t("confirm_title"), f"<p>{look.t('complained_body')}</p>")
        )
    return _html(
        pages.message_page(look, "confirmed_title", "confirmed_body", address=person.address)
    )


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    await run_in_threadpool(service.store.subscriber, token_id="")
    return PlainTextResponse("ok\n")


def create_app(
    project: Project,
    store: Store,
    list_name: str,
    language: str,
    publisher: str,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The service for one list. Refuses to start (UserError) without a strong key, with an
    unsubscribe URL that has no {token}, or with DKIM set up in part."""
    from aspdigest.deliver.email import _sender

    settings = project.settings
    route = unsubscribe_route(settings.email.unsubscribe_url)
    signing = keys(environ)
    try:
        smtp: SmtpTarget | None = smtp_target(environ)
    except UserError:
        smtp = None  # unsubscribe works without mail; sign-up mails wait for the URL
    service = Service(
        project=project,
        store=store,
        keys=signing,
        look=Look(list_name, settings.brand.named(publisher), language),
        route=route,
        smtp=smtp,
        dkim=signer(project, environ),
        sender=_sender(project),
        clock=clock,
        per_client=RateLimit(20, 600),
        per_address=RateLimit(3, 3600),
    )
    methods = ["GET", "POST"]
    app = Starlette(
        routes=[
            Route(route.path, unsubscribe, methods=methods),
            Route("/resubscribe/{token}", resubscribe, methods=["POST"]),
            Route("/subscribe", subscribe, methods=methods),
            Route("/confirm/{token}", confirm, methods=methods),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.service = service
    app.state.csrf = Csrf(signing.current)
    app.add_middleware(Guard)
    return app
