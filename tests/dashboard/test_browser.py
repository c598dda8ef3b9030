"""The dashboard in a real browser: sign in, read this month's spend, filter the log,
open a request, and (as an admin) create and revoke a key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.dashboard.conftest import ADMIN, HOSTILE, Seeded
from tests.support.browser import FIRST_PAINT, artifact, chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


async def signed_in(browser: Browser, seeded: Seeded, key: str) -> Page:
    page = await browser.new_page(viewport={"width": 1366, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    page.on("pageerror", lambda e: pytest.fail(f"script error on the page: {e}"))
    # Anything the page's own policy blocks is a defect of the page (an inline style, say).
    page.on(
        "console",
        lambda m: "Content Security Policy" in m.text and pytest.fail(f"blocked: {m.text}"),
    )
    await page.goto(f"{seeded.gateway.url}/dashboard")
    # The keyboard alone: the key field has the focus, Enter signs in.
    await expect(page.get_by_label("Gateway key")).to_be_focused()
    await page.keyboard.type(key)
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_contain_text("Updated")
    return page


async def test_a_user_sees_their_spend_filters_the_log_and_opens_a_request(
    browser: Browser, seeded: Seeded
) -> None:
    page = await signed_in(browser, seeded, seeded.user_key)
    async with seeded.gateway.http() as http:
        budget = (
            await http.get("/api/budget", headers={"Authorization": f"Bearer {seeded.user_key}"})
        ).json()
    assert float(budget["spent_usd"]) > 0
    # The same exact amount the API reports, to the last digit.
    await expect(page.locator("#budgets")).to_contain_text(f"${budget['spent_usd']} of $5")
    await expect(page.locator("#totals")).to_contain_text("7")  # requests this month
    await expect(page.locator("#chart svg")).to_be_visible()
    await expect(page.locator("#health")).to_contain_text("gpt-4o-mini")
    await page.screenshot(path=artifact("dashboard-user.png"), full_page=True)

    rows = page.locator("#requests tbody tr")
    await expect(rows).to_have_count(7)
    await page.get_by_label("Outcome").select_option("error")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("broken")
    await page.get_by_label("Outcome").select_option("")
    await page.get_by_label("Model").fill("m")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(6)

    await rows.first.get_by_role("button").click()
    detail = page.locator("#detail")
    await expect(detail).to_be_focused()
    await expect(detail).to_contain_text("gpt-4o-mini")
    await expect(detail).to_contain_text("client-")  # the caller's own request id
    await expect(detail).not_to_contain_text("Debug bodies")
    await page.screenshot(path=artifact("dashboard-request.png"), full_page=True)
    # What callers send is shown as text, never run: the user agent held markup.
    assert await page.title() != "pwned"
    assert HOSTILE not in await page.content() or "&lt;img" in await page.content()


async def test_an_admin_creates_and_revokes_a_key(browser: Browser, seeded: Seeded) -> None:
    page = await signed_in(browser, seeded, ADMIN)
    await expect(page.locator("#who")).to_contain_text("(admin)")
    await page.get_by_label("For user").select_option("team")
    await page.get_by_label("Key name").fill("from-the-browser")
    # A typo in a limit is refused, not sent as "no limit".
    await page.get_by_label("Requests per minute (optional)").fill("1,000")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.locator("#admin-message")).to_contain_text("whole number")
    assert await page.locator("#new-secret").count() == 0
    await page.get_by_label("Requests per minute (optional)").fill("60")
    await page.get_by_role("button", name="Create key").click()
    secret = (await page.locator("#new-secret").text_content()) or ""
    assert secret.startswith("llmg_")
    await page.screenshot(path=artifact("dashboard-admin-key.png"), full_page=True)
    auth = {"Authorization": f"Bearer {secret}"}
    async with seeded.gateway.http() as http:
        assert (await http.get("/v1/models", headers=auth)).status_code == 200
    # Shown once: gone from the page when dismissed, and in no listing.
    await page.get_by_role("button", name="Done").click()
    assert secret not in await page.content()

    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke key team/from-the-browser").click()
    await expect(page.locator("#admin-message")).to_contain_text("revoked")
    await expect(page.locator("#keys")).to_contain_text("revoked")
    async with seeded.gateway.http() as http:
        assert (await http.get("/v1/models", headers=auth)).status_code == 401
    # Signing out leaves nothing of the session in the page for the next person.
    await page.locator("#requests tbody tr").first.get_by_role("button").click()
    await expect(page.locator("#detail")).to_contain_text("Debug bodies")  # an admin's view
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Gateway key")).to_be_focused()
    assert "Debug bodies" not in await page.content()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_every_control_has_a_label_and_first_paint_is_fast(
    browser: Browser, seeded: Seeded
) -> None:
    page = await signed_in(browser, seeded, ADMIN)
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.textContent.trim())
            .map(e => e.outerHTML)"""
    )
    assert unlabelled == []
    fresh = await browser.new_page()
    await fresh.goto(f"{seeded.gateway.url}/dashboard")
    paint = await fresh.evaluate(FIRST_PAINT)
    assert paint < 300, f"first contentful paint after {paint:.0f} ms"
