"""An admin signs in and sees the home page, chart included, with no script blocked by the CSP."""

from __future__ import annotations

from tests.browser.conftest import screenshot
from tests.helpers import PASSWORD, make_user


def test_an_admin_signs_in_and_sees_the_home_page(served, page):
    app, url = served
    make_user(app, "admin@example.org", "admin")
    page.goto(f"{url}/")
    assert page.url.endswith("/login?next=/")
    page.get_by_label("Email").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")
    page.get_by_text("items in the catalogue").wait_for()
    page.locator("canvas[data-chart]").wait_for()  # loaded by htmx after the page
    assert page.locator("canvas[data-chart]").evaluate("c => c.feedloopChart !== undefined")
    screenshot(page, "home")
    assert page.console_errors == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{url}/login")
