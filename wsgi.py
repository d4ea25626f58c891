"""WSGI entry point: `gunicorn wsgi:app` (what `feedloop serve` runs)."""

from app import create_app

app = create_app(warm=True)
