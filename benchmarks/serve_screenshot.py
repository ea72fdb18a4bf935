"""Screenshot of ``pmed serve``'s clinician page for docs/serve.md (``docs/serve_page.png``).

The demo's bundle needs genotype and PGx blocks, which the service cannot take yet, so this
trains a clinical-only version of the demo's clopidogrel study (the same synthetic cohort and
treatment section, a linear model) on ``--n-patients`` synthetic patients, serves it on a free
local port, signs in with a fresh clinician token, fills the form from the cohort's first new
patient (through the page's CSV upload) and saves the answer.

    python benchmarks/serve_screenshot.py [--out docs/serve_page.png] [--work DIR]

Needs the ``serve`` extra, Playwright (python) and Chromium at ``/usr/bin/chromium`` (or
``--chromium PATH``). About a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUDY = """\
name: clopidogrel-response
description: the demo's clopidogrel study without its genotype blocks (synthetic data)
data:
  patients: data/patients.csv
  schema: data/schema.yaml
  outcomes: [cad, ldl_mmol_l, chd_years, chd_event]
target: {column: response, task: binary}
features:
  exclude: [site]
models:
  - family: linear
evaluation: {folds: 5, repeats: 1, bootstrap: 100}
treatment: {column: drug, control: clopidogrel, randomized: true, propensity: 0.5,
            modifiers: [age, sex, bmi, smoking, diabetes, hypertension, prior_mi]}
effect_models: [t_learner]
seed: 0
"""


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "serve_page.png")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--n-patients", type=int, default=600)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--width", type=int, default=1024, help="viewport width (1024: a tablet in landscape)")
    args = ap.parse_args(argv)
    if args.work is None:
        with tempfile.TemporaryDirectory(prefix="pmed-serve-shot-") as tmp:
            return _run(args, Path(tmp))
    args.work.mkdir(parents=True, exist_ok=True)
    return _run(args, args.work)


def _run(args, work: Path) -> Path:
    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from pmed.datasets.synthetic import write_synthetic_cohort
    from pmed.io import write_text_atomic
    from pmed.serve import create_app, create_token
    from pmed.study import run_study

    t0 = time.perf_counter()
    files = write_synthetic_cohort(work / "data", n_patients=args.n_patients, n_new=3, seed=0)
    write_text_atomic(work / "study.yaml", STUDY)
    run_study(work / "study.yaml", work / "models" / "clopidogrel")
    print(f"trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    app = create_app(work / "models", f"sqlite:///{work / 'serve.sqlite'}")
    token = create_token(app.state.engine, role="clinician", user="screenshot")
    # the first new patient as a one-row CSV, uploaded through the page's form
    new = files["new_patients"].read_text().splitlines()
    one_row = ("\n".join(new[:2]) + "\n").encode()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        if not th.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": 800})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            # generous timeouts: the first request loads the bundle (slow on a busy machine)
            expect(page.get_by_label("Model", exact=True)).to_have_value("clopidogrel-response", timeout=60_000)
            expect(page.get_by_label("Patient ID")).to_be_visible(timeout=60_000)  # the form is built
            page.get_by_label("Fill from a CSV file", exact=False).set_input_files(
                {"name": "patient.csv", "mimeType": "text/csv", "buffer": one_row})
            page.get_by_role("button", name="Predict").click()
            expect(page.locator("#population")).to_contain_text("percentile", timeout=60_000)
            expect(page.locator("#problem")).to_be_hidden()
            page.screenshot(path=str(work / "page.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        th.join(10)
    if errors:
        raise RuntimeError(f"the page logged errors: {errors}")
    _save_small(work / "page.png", args.out)
    print(f"{args.out}: {args.out.stat().st_size / 1000:.0f} kB, {time.perf_counter() - t0:.0f} s in all",
          file=sys.stderr)
    return args.out


def _save_small(png: Path, out: Path) -> None:
    """``png`` in 64 colours (text and flat fills: no visible loss, a third of the size), atomically at ``out``."""
    from PIL import Image

    from pmed.io import atomic_path

    with Image.open(png) as im, atomic_path(out) as tmp:
        im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)


if __name__ == "__main__":
    main()
