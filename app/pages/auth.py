"""Sign-in and sign-out. Sessions live in a signed HttpOnly, SameSite=Lax cookie (Secure under https)."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from app import db
from app.pages import pages
from app.services.users import authenticate
from app.web import Account, limiter

bp = pages("auth", __name__, roles=None)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def _login_limit() -> str:
    return current_app.config["FEEDLOOP"].login_rate_limit


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    next_url = _safe_next(request.args.get("next"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url or url_for("home.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        with db.write_session() as s:
            user = authenticate(s, form.email.data, form.password.data)
            account = Account(user.id, user.email, user.role) if user else None
        if account is not None:
            session.clear()  # nothing from before the sign-in survives it
            login_user(account)
            return redirect(next_url or url_for("home.index"))
        error = "Wrong email or password, or the account is disabled."
    elif request.method == "POST":
        error = "Fill in both fields."
    status = 401 if error else 200
    return render_template("auth/login.html", form=form, error=error, next=next_url), status


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: an absolute or scheme-relative URL would make /login an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
