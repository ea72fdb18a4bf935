"""Screenshot of ``pmed serve``'s clinician page for docs/serve.md (``docs/serve_page.png``).

Serves the bundles of a ``pmed demo`` output (``--demo DIR``; the demo is run there first when
the folder holds none) on a free local port, signs in with a fresh clinician token, chooses the
demo's clopidogrel-response model, fills the form with one new patient of the demo (``--patient``,
default P1005, the CYP2C19 intermediate metabolizer on clopidogrel) through the page's CSV upload
— the clinical columns of ``data/new_patients.csv`` and, beside them, the genotype and PGx columns
the model reads (``pmed predict``'s features of that patient) — and saves the answer.

    python benchmarks/serve_screenshot.py [--demo pmed-demo] [--out docs/serve_page.png]

Needs the ``serve`` extra, Playwright (python) and Chromium at ``/usr/bin/chromium`` (or
``--chromium PATH``). Under a minute on 2 cores with a demo output at hand.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "clopidogrel-response-synthetic-demo"


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=REPO / "pmed-demo", help="a pmed demo output (run there if absent)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "serve_page.png")
    ap.add_argument("--patient", default="P1005")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--width", type=int, default=1024, help="viewport width (1024: a tablet in landscape)")
    ap.add_argument("--max-height", type=int, default=3000,
                    help="pixels kept from the top (the guidance table of 19 genes runs on for pages)")
    args = ap.parse_args(argv)
    if not (args.demo / "results" / "model" / "manifest.json").is_file():
        from pmed.demo import run_demo

        t0 = time.perf_counter()
        run_demo(args.demo)
        print(f"pmed demo in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="pmed-serve-shot-") as tmp:
        return _run(args, Path(tmp))


def patient_csv(demo: Path, patient: str) -> bytes:
    """One new patient of the demo as a CSV row: clinical columns, then the block columns the model reads."""
    import pandas as pd

    from pmed.study import load_bundle
    from pmed.study.predict import new_patient_features

    bundle = load_bundle(demo / "results" / "model")
    new = demo / "data" / "new_patients.csv"
    X = new_patient_features(bundle, new, blocks={"genotypes": demo / "data" / "genotypes.vcf.gz",
                                                  "pgx": demo / "pgx" / "features.csv"})
    row = pd.read_csv(new, dtype={"patient_id": str}).set_index("patient_id").loc[[patient]]
    blocks = [c for c in bundle.feature_names if c not in bundle.input_schema().columns]
    buf = io.StringIO()
    row.join(X.loc[[patient], blocks]).reset_index().to_csv(buf, index=False)
    return buf.getvalue().encode()


def one_sample_vcf(vcf_gz: Path, sample: str) -> bytes:
    """The VCF with only ``sample``'s genotype column (what a lab would send for one patient)."""
    import gzip

    out = []
    with gzip.open(vcf_gz, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("##"):
                out.append(line)
                continue
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#CHROM"):
                keep = fields.index(sample)
            out.append("\t".join(fields[:9] + [fields[keep]]) + "\n")
    return "".join(out).encode()


def _run(args, work: Path) -> Path:
    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from pmed.serve import create_app, create_token
    from pmed.serve.testing import free_port

    t0 = time.perf_counter()
    one_row = patient_csv(args.demo, args.patient)
    one_vcf = one_sample_vcf(args.demo / "data" / "genotypes.vcf.gz", args.patient)
    app = create_app(args.demo, f"sqlite:///{work / 'serve.sqlite'}")
    token = create_token(app.state.engine, role="clinician", user="screenshot")
    port = free_port()
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
            model = page.get_by_label("Model", exact=True)
            expect(model.locator(f"option[value='{MODEL}']")).to_have_count(1, timeout=60_000)
            model.select_option(MODEL)
            # generous timeouts: the first request loads the bundle (slow on a busy machine)
            expect(page.get_by_label("Patient ID")).to_be_visible(timeout=60_000)  # the form is built
            page.get_by_label("Fill from a CSV file", exact=False).set_input_files(
                {"name": "patient.csv", "mimeType": "text/csv", "buffer": one_row})
            page.get_by_role("button", name="Predict", exact=True).click()
            expect(page.locator("#population")).to_contain_text("percentile", timeout=60_000)
            expect(page.locator("#problem")).to_be_hidden()
            # the patient's pharmacogenes, from their column of the demo's VCF
            page.get_by_label("GRCh38 VCF", exact=False).set_input_files(
                {"name": f"{args.patient}.vcf", "mimeType": "text/plain", "buffer": one_vcf})
            page.get_by_role("button", name="Call star alleles").click()
            expect(page.locator("#pgx-result")).to_be_visible(timeout=60_000)
            # the upload opened the section of the ~220 genotype and PGx inputs: closed for the picture
            page.locator("#block-box").evaluate("d => { d.open = false; }")
            page.screenshot(path=str(work / "page.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        th.join(10)
        app.state.engine.dispose()
    if errors:
        raise RuntimeError(f"the page logged errors: {errors}")
    _save_small(work / "page.png", args.out, max_height=args.max_height)
    print(f"{args.out}: {args.out.stat().st_size / 1000:.0f} kB, {time.perf_counter() - t0:.0f} s in all",
          file=sys.stderr)
    return args.out


def _save_small(png: Path, out: Path, *, max_height: int) -> None:
    """The top ``max_height`` pixels of ``png`` in 64 colours (text and flat fills: no visible loss,
    a third of the size), atomically at ``out``."""
    from PIL import Image

    from pmed.io import atomic_path

    with Image.open(png) as im, atomic_path(out) as tmp:
        im = im.crop((0, 0, im.width, min(im.height, max_height)))
        im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(tmp, format="PNG", optimize=True)


if __name__ == "__main__":
    main()
