"""Webhooks on poll answers and on alerts: admins point them at a URL, every answer (topic poll.response) and every
new alert (topic alert) stores one delivery per matching webhook in its own transaction (the outbox), and
`deliver_due` sends what is due, signed, with retries.

Delivery is at least once: a delivery is claimed by a conditional update that counts the attempt and moves its
next attempt a lease ahead, so two senders never send the same one at once, and a sender that dies mid-send
leaves it to be tried again when the lease ends. Receivers deduplicate by the body's `id`.

Sending guards against SSRF and DNS rebinding by resolving the host once, checking every address with the URL
policy of feedback.webhooks, and connecting to the checked address itself: urllib3 opens the connection to that
IP, while the Host header, TLS SNI and certificate check use the name. Resolving again inside an HTTP client (or a
proxy) could answer differently the second time, which is the rebinding attack; so no proxy is used either.
Redirects are never followed: a 3xx is a failed attempt whose Location is reported to the admin.
"""

from __future__ import annotations

import json
import random
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import urllib3
from sqlalchemy import Engine, case, func, update
from sqlmodel import Session, col, select

from app.db import write_session
from app.models import Alert, Poll, PollResponse, Webhook, WebhookDelivery, utcnow
from app.settings import Settings
from feedback.webhooks import Target, UrlRefused, check_url, next_retry, parse_url, sign

EVENT = "poll.response"
ALERT = "alert"
TOPICS = (EVENT, ALERT)  # what a webhook receives: poll answers, or the alerts monitoring raises
USER_AGENT = "feedloop-webhooks/1"
BATCH = 100  # deliveries claimed per call
SENDERS = 8  # deliveries sent at once, so that one slow receiver does not hold up the others
MAX_ERROR = 500  # characters of an error kept for the admin page


class WebhookError(ValueError):
    pass


class UnknownWebhook(WebhookError):
    pass


# --- configuration -------------------------------------------------------------------------------------------

Resolve = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (empty when it does not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vet_url(url: str, allow_private: bool, resolve: Resolve = resolve) -> Target:
    try:
        target = parse_url(url.strip())
        return check_url(url.strip(), resolve(target.host, target.port), allow_private)
    except UrlRefused as exc:
        raise WebhookError(str(exc)) from None


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)  # 256 bits; the prefix tells secret scanners what it is


@dataclass(frozen=True)
class Created:
    id: int
    secret: str  # shown once: only the receiver needs it afterwards


def create_webhook(
    s: Session,
    url: str,
    *,
    created_by: str,
    topic: str = EVENT,
    poll_id: int | None = None,
    allow_private: bool = False,
    resolve: Resolve = resolve,
) -> Created:
    """A webhook for one poll's answers (or every poll's, without `poll_id`), or for alerts (topic "alert", no
    poll), its URL checked now as it will be at every send."""
    url = url.strip()
    if topic not in TOPICS:
        raise WebhookError(f"unknown topic {topic!r}: {' or '.join(TOPICS)}")
    if topic == ALERT and poll_id is not None:
        raise WebhookError("an alert webhook receives every alert: it takes no poll")
    vet_url(url, allow_private, resolve)
    if poll_id is not None and s.get(Poll, poll_id) is None:
        raise WebhookError(f"there is no poll {poll_id}")
    same = select(Webhook).where(
        Webhook.url == url, Webhook.topic == topic, Webhook.poll_id == poll_id, col(Webhook.disabled_at).is_(None)
    )
    if s.exec(same).first() is not None:
        raise WebhookError(f"an active webhook already sends these {'alerts' if topic == ALERT else 'answers'} to this URL")
    webhook = Webhook(
        url=url, secret=new_secret(), topic=topic, poll_id=poll_id, allow_private=allow_private, created_by=created_by
    )
    s.add(webhook)
    s.flush()
    return Created(webhook.id, webhook.secret)


def _active(s: Session, webhook_id: int) -> Webhook:
    webhook = s.get(Webhook, webhook_id)
    if webhook is None:
        raise UnknownWebhook(f"there is no webhook {webhook_id}")
    if webhook.disabled_at is not None:
        raise WebhookError(f"webhook {webhook_id} is disabled")
    return webhook


def disable_webhook(s: Session, webhook_id: int, now: datetime | None = None) -> int:
    """Stop a webhook; its deliveries still waiting are given up (they would otherwise wait for ever). Returns how
    many were."""
    webhook, now = _active(s, webhook_id), now or utcnow()
    webhook.disabled_at = now
    given_up = s.exec(
        update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id, *_pending())
        .values(failed_at=now, last_error="the webhook was disabled before this was delivered")
    )
    return given_up.rowcount


def rotate_secret(s: Session, webhook_id: int) -> str:
    """A new secret, used from the next attempt on (retries included); the old one stops working at once."""
    webhook = _active(s, webhook_id)
    webhook.secret = new_secret()
    return webhook.secret


# --- what the admin sees -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookView:
    id: int
    url: str
    topic: str
    poll_id: int | None
    poll_question: str | None
    allow_private: bool
    created_by: str
    created_at: datetime
    disabled_at: datetime | None
    pending: int
    delivered: int
    failed: int


@dataclass(frozen=True)
class DeliveryView:
    id: int
    webhook_id: int
    event: str
    status: str  # pending, retrying, delivered, failed
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


def list_webhooks(s: Session) -> list[WebhookView]:
    counts: dict[int, dict[str, int]] = {}
    state = _state_expression()
    for webhook_id, name, n in s.exec(
        select(WebhookDelivery.webhook_id, state, func.count()).group_by(WebhookDelivery.webhook_id, state)
    ):
        counts.setdefault(webhook_id, {})[name] = n
    rows = s.exec(select(Webhook, Poll.question).outerjoin(Poll, Poll.id == Webhook.poll_id).order_by(col(Webhook.id).desc()))
    return [
        WebhookView(
            w.id,
            w.url,
            w.topic,
            w.poll_id,
            question,
            w.allow_private,
            w.created_by,
            w.created_at,
            w.disabled_at,
            *(counts.get(w.id, {}).get(k, 0) for k in ("pending", "delivered", "failed")),
        )  # fmt: skip
        for w, question in rows
    ]


def recent_deliveries(s: Session, limit: int = 50, webhook_id: int | None = None) -> list[DeliveryView]:
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.id).desc()).limit(limit)
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == webhook_id)
    return [_view(d) for d in s.exec(query)]


def _view(d: WebhookDelivery) -> DeliveryView:
    if d.delivered_at is not None:
        status, finished = "delivered", d.delivered_at
    elif d.failed_at is not None:
        status, finished = "failed", d.failed_at
    else:
        status, finished = ("retrying" if d.attempts else "pending"), None
    return DeliveryView(
        d.id, d.webhook_id, d.event, status, d.attempts, d.last_status, d.last_error,
        None if finished else d.next_attempt_at, d.created_at, finished,
    )  # fmt: skip


def _state_expression():
    return case(
        (col(WebhookDelivery.delivered_at).is_not(None), "delivered"),
        (col(WebhookDelivery.failed_at).is_not(None), "failed"),
        else_="pending",
    )


def poll_choices(s: Session) -> list[tuple[int, str]]:
    """Polls a new webhook may be limited to."""
    return [(p.id, p.question) for p in s.exec(select(Poll).order_by(col(Poll.id).desc()).limit(500))]


# --- the outbox ----------------------------------------------------------------------------------------------


def enqueue_poll_response(s: Session, poll: Poll, response: PollResponse) -> None:
    """One delivery per active poll-answer webhook for this poll (or for every poll), in the caller's transaction:
    the answer and its deliveries are stored together or not at all."""
    webhooks = s.exec(
        select(Webhook.id).where(
            col(Webhook.disabled_at).is_(None),
            Webhook.topic == EVENT,
            (Webhook.poll_id == poll.id) | col(Webhook.poll_id).is_(None),
        )
    ).all()
    if not webhooks:
        return
    if response.id is None:
        s.flush()
    poll_part = {"id": poll.id, "public_token": poll.public_token, "question": poll.question, "kind": poll.kind}
    response_part = {
        "id": response.id,
        "respondent_id": response.respondent_id,
        "answer": response.answer,
        "event_id": response.event_id,
        "item_id": response.item_id,
        "reward_value": response.reward_value,
        "created_at": response.created_at.isoformat(),
    }
    _enqueue(s, webhooks, EVENT, {"poll": poll_part, "response": response_part})


def enqueue_alert(s: Session, alert: Alert) -> None:
    """One delivery per active alert webhook for a new alert, in the transaction that raised it (the same outbox
    as poll answers: same signature, retries and address checks). The body's `alert` holds the alert's fields."""
    webhooks = s.exec(select(Webhook.id).where(col(Webhook.disabled_at).is_(None), Webhook.topic == ALERT)).all()
    if not webhooks:
        return
    alert_part = {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "subject_type": alert.subject_type,
        "subject_id": alert.subject_id,
        "message": alert.message,
        "evidence": alert.evidence,
        "review_task_id": alert.review_task_id,
        "created_at": alert.created_at.isoformat(),
    }
    _enqueue(s, webhooks, ALERT, {"alert": alert_part})


def _enqueue(s: Session, webhooks: list[int], event: str, data: dict) -> None:
    """The body is fixed now, so every retry sends the same bytes with the same `id` (the delivery's)."""
    now = utcnow()
    for webhook_id in webhooks:
        delivery = WebhookDelivery(webhook_id=webhook_id, event=event, body="", next_attempt_at=now, created_at=now)
        s.add(delivery)
        s.flush()  # the delivery's id is the body's id
        body = {"type": event, "id": f"whd_{delivery.id}", "created_at": delivery.created_at.isoformat(), **data}
        delivery.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _pending() -> tuple:
    return col(WebhookDelivery.delivered_at).is_(None), col(WebhookDelivery.failed_at).is_(None)


# --- sending -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the receiver's HTTP status; None when there was no answer
    error: str | None  # why the attempt failed, for the admin; None on 2xx

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Send = Callable[[Target, str, dict[str, str], bytes, float], Outcome]


def send_pinned(
    target: Target, address: str, headers: dict[str, str], body: bytes, timeout: float, ca_certs: str | None = None
) -> Outcome:
    """POST `body` to `target`, connecting to `address` (already checked) and to nothing else. TLS certificates
    are checked against the URL's name with the system's certificate authorities (or `ca_certs`)."""
    options = {"port": target.port, "timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, **options)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={"Host": target.host_header, **headers},
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            excerpt = response.read(300, decode_content=False).decode("utf-8", "replace")
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return Outcome(status, None)
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return Outcome(status, f"HTTP {status} to {where}: redirects are not followed (update the webhook's URL)"[:MAX_ERROR])
    return Outcome(status, f"HTTP {status}: {excerpt}".strip()[:MAX_ERROR])


@dataclass(frozen=True)
class Round:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0  # given up after the last attempt
    taken: int = 0  # claimed by another sender first

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed

    def __add__(self, other: Round) -> Round:
        return Round(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def lease(settings: Settings) -> timedelta:
    """How long a claimed delivery is left to its sender: resolution plus a connect and a read, with room."""
    return timedelta(seconds=max(300.0, 4 * settings.webhook_timeout_seconds))


def deliver_due(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    send: Send = send_pinned,
    resolve: Resolve = resolve,
    rand: Callable[[], float] = random.random,
    limit: int = BATCH,
) -> Round:
    """Send up to `limit` deliveries due at `now` (of active webhooks), oldest first; each gets its outcome recorded
    and, when it failed, its next attempt or its end."""
    now = now or utcnow()
    with Session(engine) as s:
        due = s.exec(
            select(WebhookDelivery.id, WebhookDelivery.attempts)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(*_pending(), WebhookDelivery.next_attempt_at <= now, col(Webhook.disabled_at).is_(None))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        ).all()
    if not due:
        return Round()

    def attempt(row: tuple[int, int]) -> Round:
        return _attempt(engine, settings, row[0], row[1], now, send, resolve, rand)

    with ThreadPoolExecutor(max_workers=min(SENDERS, len(due)), thread_name_prefix="webhook") as pool:
        return sum(pool.map(attempt, due), Round())


def _attempt(engine, settings, delivery_id, attempts, now, send, resolve, rand) -> Round:
    claimed = _claim(engine, settings, delivery_id, attempts, now)
    if claimed is None:
        return Round(taken=1)
    delivery, webhook = claimed
    body = delivery.body.encode()
    try:
        target = parse_url(webhook.url)
        addresses = resolve(target.host, target.port)
        check_url(webhook.url, addresses, webhook.allow_private)  # again: DNS may answer differently today
    except UrlRefused as exc:
        outcome = Outcome(None, f"not sent: {exc}")
    else:
        headers = _headers(delivery, webhook.secret, body)
        try:
            outcome = send(target, addresses[0], headers, body, settings.webhook_timeout_seconds)
        except Exception as exc:  # a bug in a transport must not leave the delivery claimed until its lease ends
            outcome = Outcome(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
    return _record(engine, settings, delivery, outcome, now, rand)


def _claim(engine, settings, delivery_id, attempts, now) -> tuple[WebhookDelivery, Webhook] | None:
    with write_session(engine) as s:
        claimed = s.exec(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.attempts == attempts,
                WebhookDelivery.next_attempt_at <= now,
                *_pending(),
            )
            .values(attempts=attempts + 1, next_attempt_at=max(now, utcnow()) + lease(settings))  # from the claim, not the round
        )
        if claimed.rowcount != 1:
            return None
        delivery = s.get(WebhookDelivery, delivery_id)
        return delivery, s.get(Webhook, delivery.webhook_id)


def _record(engine, settings, delivery: WebhookDelivery, outcome: Outcome, now: datetime, rand) -> Round:
    values: dict = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.ok:
        values["delivered_at"], result = now, Round(delivered=1)
    elif (delay := next_retry(delivery.attempts, settings.webhook_attempts, rand)) is None:
        values["failed_at"], result = now, Round(failed=1)
    else:
        values["next_attempt_at"], result = now + timedelta(seconds=delay), Round(retrying=1)
    with write_session(engine) as s:  # unless it was disabled, or its lease ran out and another sender took it
        s.exec(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.attempts == delivery.attempts, *_pending())
            .values(**values)
        )
    return result


def _headers(delivery: WebhookDelivery, secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Feedloop-Event": delivery.event,
        "Feedloop-Delivery": f"whd_{delivery.id}",
        **sign(secret, int(time.time()), body),
    }
