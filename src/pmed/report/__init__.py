"""Self-contained HTML reports (model report along TRIPOD+AI, patient report) and PDF export.

Reports are computed elsewhere and only *rendered* here: they take the evaluation dictionary
(``metrics.json`` of ``pmed evaluate``), a context describing the study, and PNG figures, and
embed everything in one HTML file (no network, no scripts), which headless Chromium can print
to PDF.
"""

from pmed.report.evaluation import write_evaluation
from pmed.report.html import model_report, patient_report
from pmed.report.pdf import find_chromium, html_to_pdf, screenshot

__all__ = ["write_evaluation", "model_report", "patient_report", "html_to_pdf", "screenshot", "find_chromium"]
