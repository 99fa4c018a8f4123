"""People signed in to the pages through the sign-in page, in browser contexts of their own."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from tests.support.server import OrthancServer


def signed_in(
    browser: Browser,
    contexts: list[BrowserContext],
    orthanc: OrthancServer,
    path: str,
    username: str,
    password: str,
    *,
    locale: str = "en-GB",
    viewport: tuple[int, int] = (1366, 900),
    accept_downloads: bool = False,
    dialogs: bool = False,
    account: str | None = None,
) -> Page:
    """``username`` on ``path``, signed in through the sign-in page it sent them to.

    A new browser context (``viewport`` as width and height, ``locale``, ``accept_downloads``)
    is made and appended to ``contexts`` (the ``contexts`` fixture closes them). The page opens
    ``path`` and is sent to ``/login?next=...``; a ``/api/`` path has no page to do so, so the
    browser goes to that sign-in page itself. The credentials are typed and submitted, and the
    page is awaited back on ``path``: the same address path, with at least the query
    parameters of ``path`` (pages add their own state to the query). Where ``account`` is a
    selector, its text must contain ``username``.

    The page's uncaught errors are collected in ``page.errors`` (``no_page_errors``). With
    ``dialogs``, every dialog is accepted and its message kept in ``page.dialogs``; without,
    no one listens and Playwright dismisses them.
    """
    width, height = viewport
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale=locale,
        accept_downloads=accept_downloads,
    )
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    if dialogs:
        messages: list[str] = []

        def answer(dialog: Dialog) -> None:
            messages.append(dialog.message)
            dialog.accept()

        page.on("dialog", answer)
        page.dialogs = messages  # type: ignore[attr-defined]

    if path.startswith("/api/"):  # no page to send them to sign in: they go themselves
        page.goto(orthanc.url("/login?next=" + quote(path, safe="")))
    else:
        page.goto(orthanc.url(path))
        page.wait_for_url("**/login?next=**")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#submit")
    wanted = urlsplit(orthanc.url(path))
    page.wait_for_url(lambda url: _arrived(url, wanted.path, wanted.query))
    if account is not None:
        expect(page.locator(account)).to_contain_text(username)
    return page


def _arrived(url: str, path: str, query: str) -> bool:
    """Whether ``url`` is on ``path`` with (at least) the parameters of ``query``."""
    there = urlsplit(url)
    return there.path == path and set(parse_qsl(query)) <= set(parse_qsl(there.query))


def no_page_errors(page: Page) -> None:
    """No uncaught error on a page made by ``signed_in`` since it was opened."""
    assert page.errors == []  # type: ignore[attr-defined]
