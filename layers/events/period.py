"""Reporting periods (统计时段) for the screening and assessment reports: whole Beijing days, end included.

The dispute screening runs by half-month (半月一排查一上报): the 1st–15th and the 16th–end of a month. Any
other start and end are allowed too, up to a year. A period covers ``[start 00:00, end + 1 day 00:00)``
Beijing time.

>>> half_month(dt.date(2024, 2, 20))
Period(start=datetime.date(2024, 2, 16), end=datetime.date(2024, 2, 29))
>>> previous_half_month(dt.date(2024, 3, 3)).label
'2024-02-16 至 2024-02-29'
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
from dataclasses import dataclass

from gis.errors import ServiceError
from layers.events.calendar import BEIJING

PRESETS = {
    "this_half_month": "本半月",
    "last_half_month": "上半月",
    "this_month": "本月",
    "this_quarter": "本季度",
    "custom": "自定义",
}


class PeriodError(ServiceError):
    """A period that cannot be reported on (end before start, longer than a year)."""

    status = 422


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # included

    @property
    def begins(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(0), BEIJING)

    @property
    def ends(self) -> dt.datetime:
        """The first moment after the period."""
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(0), BEIJING)

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} 至 {self.end.isoformat()}"

    def cut(self, now: dt.datetime) -> dt.datetime:
        """The moment the figures stand at: the end of the period, or now while it is still running."""
        return min(self.ends, now)


def _one_year_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def period(start: dt.date, end: dt.date) -> Period:
    """A checked period: ``end`` not before ``start``, and less than a year after it."""
    if end < start:
        raise PeriodError(f"结束日期（{end}）不能早于开始日期（{start}）(end before start)")
    if end >= _one_year_after(start):
        raise PeriodError(f"统计时段不能超过一年（{start} 至 {end}），请缩短时段 (period longer than a year)")
    return Period(start, end)


def half_month(day: dt.date) -> Period:
    """The half-month (1st–15th or 16th–end) containing ``day``."""
    if day.day <= 15:
        return Period(day.replace(day=1), day.replace(day=15))
    last = month_calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=16), day.replace(day=last))


def previous_half_month(day: dt.date) -> Period:
    return half_month(half_month(day).start - dt.timedelta(days=1))


def month(day: dt.date) -> Period:
    last = month_calendar.monthrange(day.year, day.month)[1]
    return Period(day.replace(day=1), day.replace(day=last))


def quarter(day: dt.date) -> Period:
    first_month = 3 * ((day.month - 1) // 3) + 1
    last = dt.date(day.year, first_month + 2, 1)
    return Period(dt.date(day.year, first_month, 1), month(last).end)


def preset(name: str, today: dt.date) -> Period:
    """One of :data:`PRESETS` (not ``custom``) around ``today``."""
    makers = {"this_half_month": half_month, "last_half_month": previous_half_month, "this_month": month,
              "this_quarter": quarter}
    if name not in makers:
        raise PeriodError(f"未知的时段 {name!r}，可选 {', '.join(makers)} (unknown preset)")
    return makers[name](today)
