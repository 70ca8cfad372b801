"""The documentation's picture of ``eegpt serve``: the page, driven in headless Chromium (Playwright), after
loading a recording, asking a follow-up and streaming the recording in the Live panel.

    python experiments/serve_screenshot.py [--model runs/demo-quick] [--file REC.edf] [--out docs/serve.png]

Needs the ``live`` and ``test`` extras and the system Chromium (Debian's package ``chromium``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
from pathlib import Path

from eegpt.errors import EEGInputError
from eegpt.serve import serve


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="runs/demo-quick")
    p.add_argument("--file", help="a recording (default: the demo's held-out example)")
    p.add_argument("--question", default="What do you suggest?")
    p.add_argument("--out", default="docs/serve.png")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("serve_screenshot: no system Chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    try:
        path = args.file or json.loads((Path(args.model) / "report.json").read_text())["copilot"]["recording"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app, url = serve(args.model, port=port, block=False)
    except (EEGInputError, FileNotFoundError) as err:
        print(f"serve_screenshot: {err}", file=sys.stderr)
        return 2
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url)
            page.locator("#recording input[type=file]").set_input_files(path)
            page.get_by_label("age (years)").fill("42")
            page.locator("#read").click()
            page.locator("#chat").get_by_text("Sources:").first.wait_for(timeout=120_000)
            page.locator("#question textarea").fill(args.question)
            page.locator("#ask").click()
            page.wait_for_function("document.querySelectorAll('#chat .message').length >= 4", timeout=120_000)
            page.get_by_text("Live: a prediction for every new second").click()
            page.locator("#live-speed input").fill("0")
            page.locator("#live-start").click()
            page.locator("#live-now").get_by_text("end of the recording").wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        app.close()
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
