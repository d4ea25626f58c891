"""What the pages need around them: sign-in sessions (Flask-Login), CSRF tokens (Flask-WTF), rate limits
(Flask-Limiter, counters shared through the database) and a strict Content-Security-Policy.

The extensions are created here and bound in create_app, so blueprints can decorate views with them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import AnonymousUserMixin, LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from app import db, rate_limits  # noqa: F401  (rate_limits registers the feedloop+db:// storage)
from app.models import User

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(get_remote_address)

# No inline script or style anywhere: scripts and styles come from /static only. Pages are framed by nobody;
# a poll embed sets its own frame-ancestors from the poll's allowed origins (see `csp`).
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


def csp(frame_ancestors: list[str] | None = None) -> str:
    """The Content-Security-Policy, framed only by `frame_ancestors` (exact origins) or by nobody."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return f"{_POLICY}; frame-ancestors {ancestors}"


@dataclass(frozen=True)
class Account:
    """The signed-in person, as Flask-Login's `current_user` (a plain value: no database session behind it)."""

    id: int
    email: str
    role: str
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Anonymous(AnonymousUserMixin):
    role = None
    is_admin = False


def actor() -> str:
    """Who is acting, for the audit log and `created_by`: a signed-in person or an API key."""
    if getattr(current_user, "is_authenticated", False):
        return f"user:{current_user.id}"
    if "api_key_id" in g:
        return f"key:{g.api_key_id}"
    return "public"


def init_app(app: Flask) -> None:
    settings = app.config["FEEDLOOP"]
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)
    app.config.update(
        SESSION_COOKIE_NAME="feedloop_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session that holds it
        RATELIMIT_STORAGE_URI=settings.rate_limit_storage or "feedloop+db://",
        RATELIMIT_STORAGE_OPTIONS={} if settings.rate_limit_storage else {"engine": app.extensions["db_engine"]},
        RATELIMIT_HEADERS_ENABLED=True,
    )
    login_manager.init_app(app)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    limiter.init_app(app)
    app.after_request(_security_headers)


@login_manager.user_loader
def _load_account(user_id: str) -> Account | None:
    user = db.session().get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or user.disabled_at is not None:
        return None
    return Account(user.id, user.email, user.role)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", csp())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.blueprint and not request.path.startswith("/api/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # pages show private data; the back button must not
    return response
