"""Run reports: PNG plots of a run's metrics and a self-contained ``report.html``.

A run directory holds ``metrics.jsonl`` (written by
:class:`gradwise.train.MetricsLogger`); :func:`write_report` turns it into
plots and one HTML page with the plots embedded, so the page can be mailed or
archived on its own.
"""

from gradwise.report._html import Section, render_html, write_report
from gradwise.report._plots import plot_curves, plot_history, read_metrics

__all__ = ["Section", "plot_curves", "plot_history", "read_metrics", "render_html", "write_report"]
