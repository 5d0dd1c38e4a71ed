"""Reports over the state DB: leads over time, the funnel, sources, campaigns, clean your
room, MQL to SAL and sync health. Each is a function of (facts, period, options) that
returns tables; `registry.REPORTS` names them; `syncagent report NAME` prints them."""

from syncagent.reports.data import ReportSource
from syncagent.reports.model import Options, Period, ReportResult, Table, default_period
from syncagent.reports.registry import REPORTS, report_named

__all__ = ["REPORTS", "Options", "Period", "ReportResult", "ReportSource", "Table",
           "default_period", "report_named"]
