"""Working days (工作日) in Beijing time, after the official calendar of holidays and make-up days.

Time limits count working days as the State Council's yearly notice sets them (the ``chinesecalendar``
package): the Spring Festival and National Day weeks are off, and the weekends swapped for them are
working days. The day something arrives does not count; a limit of ``n`` working days ends at midnight
after the ``n``-th working day that follows it.

>>> import datetime as dt
>>> due_after(dt.datetime(2024, 9, 30, 10, 0, tzinfo=BEIJING), 3)   # over National Day 2024
datetime.datetime(2024, 10, 11, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='Asia/Shanghai'))
>>> is_working_day(dt.date(2024, 10, 12))                             # a make-up Saturday
True
"""

from __future__ import annotations

import datetime as dt
import zoneinfo  # noqa: F401  (the doctest's repr names it)
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

BEIJING = ZoneInfo("Asia/Shanghai")
_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """A working day by the official calendar; outside the years it covers, Monday to Friday."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def beijing_today() -> dt.date:
    """Today in Beijing: what a date typed in the field means, whatever the server's own time zone."""
    return dt.datetime.now(BEIJING).date()


def beijing_date(moment: dt.datetime) -> dt.date:
    return _aware(moment).astimezone(BEIJING).date()


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("时间须带时区 (a naive datetime is ambiguous here)")
    return moment


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), BEIJING)


def nth_working_day(start: dt.datetime, n: int) -> dt.date:
    """The ``n``-th working day after the (Beijing) day of ``start`` (``n`` ≥ 1)."""
    day, count = beijing_date(start), 0
    while count < n:
        day += _DAY
        if is_working_day(day):
            count += 1
    return day


def due_after(start: dt.datetime, days: int) -> dt.datetime:
    """The deadline of a limit of ``days`` working days begun at ``start``: midnight ending the last one."""
    if days < 1:
        raise ValueError("时限至少 1 个工作日 (a limit is at least one working day)")
    return _midnight(nth_working_day(start, days) + _DAY)


def yellow_after(start: dt.datetime, days: int, warn_days: int) -> dt.datetime:
    """When the light turns yellow: at the start of the last ``warn_days`` working days of the limit
    (at once, when the limit is no longer than that)."""
    if days <= warn_days:
        return _aware(start)
    return _midnight(nth_working_day(start, days - warn_days + 1))


def working_days_between(start: dt.datetime, end: dt.datetime) -> int:
    """Working days from the day after ``start``'s day through ``end``'s day (0 when ``end`` is not later)."""
    first, last = beijing_date(start) + _DAY, beijing_date(end)
    count = 0
    while first <= last:
        count += is_working_day(first)
        first += _DAY
    return count


def light(now: dt.datetime, yellow_at: dt.datetime | None, due_at: dt.datetime | None) -> str | None:
    """The warning light (预警灯): ``green``, ``yellow`` near the deadline, ``red`` once it has passed;
    ``None`` for a step without a time limit."""
    if due_at is None:
        return None
    if now >= due_at:
        return "red"
    if yellow_at is not None and now >= yellow_at:
        return "yellow"
    return "green"
