"""Reports of evaluation results and discovery runs: tables, figures, statistics, trace viewer.

``autotts report`` is :func:`build_report`; see :mod:`autotts.report.build` for the layout
of the directory it writes.
"""

from autotts.report.build import Report, ReportOptions, build_report
from autotts.report.inputs import cell_from_record, load_inputs

__all__ = ["Report", "ReportOptions", "build_report", "cell_from_record", "load_inputs"]
