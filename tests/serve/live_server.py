"""``juanji serve`` started as a real process on a free port, for the API and browser tests; Debian's chromium
driven by Playwright (never a downloaded browser), and the one way its tests open a page."""
import contextlib
import re
import subprocess
import sys
import threading

CHROMIUM = "/usr/bin/chromium"
ANALYSED = "document.querySelector('#occlusion-note').textContent.startsWith('occlusion of')"


@contextlib.contextmanager
def serving(*arguments):
    """Run ``juanji serve ARGUMENTS --port 0`` and yield its base URL (``http://127.0.0.1:PORT``); stop it after."""
    with serving_process(*arguments) as (url, _):
        yield url


@contextlib.contextmanager
def serving_process(*arguments):
    """``serving``, yielding (base URL, the server's ``Popen``) for a test that watches the process itself."""
    process = subprocess.Popen([sys.executable, "-m", "juanji.cli", "serve", *map(str, arguments), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)          # a server that never says where it listens
    watchdog.start()
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"juanji serve did not start: {line!r} {process.stderr.read() if not line else ''}"
        yield f"http://127.0.0.1:{match.group(1)}", process
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=20)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def new_page(browser, width=1400, height=1000, timeout=None, **context):
    """A blank page in a browser context of its own (``context``: more of Playwright's ``new_context`` options, a
    locale say), width × height CSS pixels, ``timeout`` ms for each wait (Playwright's 30 s if None); every
    JavaScript error it meets, logged or thrown, is kept in ``page.errors``. Closing its context closes it."""
    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    if timeout is not None:
        page.set_default_timeout(timeout)
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


@contextlib.contextmanager
def analysed_page(browser, url, **options):
    """A ``new_page`` (of ``options``) at url, its blank image analysed, occlusion included; closed after, when no
    JavaScript error may have happened on it."""
    page = new_page(browser, **options)
    try:
        page.goto(url)
        page.wait_for_function(ANALYSED)
        yield page
    finally:
        page.context.close()
    assert page.errors == []
