"""People who sign in to the pages: accounts with a role, passwords kept as argon2id hashes (slow on purpose, so
a stolen table does not give the passwords away)."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from app.models import User, utcnow

ROLES = ("admin", "reviewer")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes any length; this only bounds the work one sign-in can ask for
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HASHER = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's second recommendation)
# Verified when the email is unknown, so that a sign-in takes as long whether or not the account exists.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    pass


def normal_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def check_password(password: str, email: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if password.strip().lower() == email:
        raise AccountError("the password must not be the email address")


def generated_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def create_user(session: Session, email: str, role: str, password: str) -> User:
    email = normal_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    check_password(password, email)
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise AccountError(f"there is already an account for {email}")
    user = User(email=email, role=role, password_hash=HASHER.hash(password))
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, email: str, password: str) -> User:
    user = find_user(session, email)
    check_password(password, user.email)
    user.password_hash = HASHER.hash(password)
    session.add(user)
    return user


def disable_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        session.add(user)
    return user


def find_user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == normal_email(email))).first()
    if user is None:
        raise AccountError(f"no account for {email.strip().lower()}")
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active account these credentials open, or None; records the sign-in and upgrades an old hash."""
    try:
        user = session.exec(select(User).where(User.email == normal_email(email))).first()
    except AccountError:
        user = None
    if len(password) > MAX_PASSWORD:
        return None
    try:
        HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    return user
