"""Draw docs/images/serve.png: ``juanji serve RUN`` in Debian's chromium (Playwright, no downloaded browser), the
ankle boot uploaded, one map of the second convolution opened with its multiply-accumulate.

    python docs/images/serve_screenshot.py runs/lenet5 docs/images/serve.png
"""
import os
import re
import subprocess
import sys

from playwright.sync_api import sync_playwright


def main(run: str, out: str) -> None:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    server = subprocess.Popen([sys.executable, "-m", "juanji.cli", "serve", run, "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+/", server.stdout.readline()).group(0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(url)
            page.wait_for_selector("#topk li")
            page.set_input_files("#upload", "docs/images/ankle-boot.png")
            page.wait_for_function("document.querySelector('#source').textContent.includes('ankle-boot.png')")
            page.wait_for_selector(".maps canvas")
            page.click('.maps canvas[data-layer="3"][data-map="2"]')
            page.hover("#detail-map", position={"x": 150, "y": 120})
            page.wait_for_function("document.querySelector('#mac').textContent.includes('the network computed')")
            page.wait_for_timeout(300)
            page.screenshot(path=out)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main(*sys.argv[1:3])
