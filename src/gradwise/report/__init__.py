"""Run reports: PNG plots of a run's metrics and a self-contained ``report.html``.

A run directory holds ``metrics.jsonl`` (written by
:class:`gradwise.train.MetricsLogger`); :func:`write_report` turns it into
plots and one HTML page with the plots embedded, so the page can be mailed or
archived on its own. :func:`write_page` writes the page of a run without
training curves (a linear fit); :func:`redraw` re-draws any run's page from
what the run wrote (``gradwise report RUN``).
"""

from gradwise.report._html import Section, render_html, write_report
from gradwise.report._plots import plot_curves, plot_history, read_metrics
from gradwise.report._redraw import redraw, write_page

__all__ = [
    "Section",
    "plot_curves",
    "plot_history",
    "read_metrics",
    "redraw",
    "render_html",
    "write_page",
    "write_report",
]
