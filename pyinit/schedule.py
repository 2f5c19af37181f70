"""Schedules: 5-field cron, `@hourly` and friends, and `@every 30s` (docs/schedules.md).

Pure: parsing, and the next time after a given one, in a time zone. The loop's part (starting
runs, skipping one while the last still runs) is scheduler.py.

Why a parser of our own, not cronsim or croniter: the whole rule set is this file (about 150
lines, tested with a fake clock, DST included), it costs no import at start-up for a run
without schedules and no dependency for one with them, and croniter's maintenance has been in
doubt (2024) while cronsim's behaviour differs from Vixie cron on day-of-month/day-of-week.

Rules, those of Vixie cron (cronie), as most users know them:
- fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of week
  0-7 (0 and 7 are Sunday, or sun-sat); each a list of `*`, `N`, `A-B`, each optionally `/STEP`;
- when both day of month and day of week are restricted, a day matching either runs;
- times are wall-clock times in `TZ` (else UTC): a time that does not exist that day (the hour
  skipped when DST starts) is not run; a time that exists twice (when DST ends) runs once, at
  its first occurrence.
"""

from __future__ import annotations

from pyinit.errors import ConfigError
from pyinit.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, low, high, names) of the five fields.
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: How far ahead a cron expression is searched: 8 years holds every Feb 29 on every weekday.
HORIZON_DAYS = 8 * 366


class Schedule(Record):
    """A parsed schedule: `every` seconds, or the sets of a cron expression."""

    __slots__ = ("dom_any", "dow_any", "every", "fields", "text")
    text: str
    every: float  # @every: the interval in seconds; 0 for cron
    fields: tuple[frozenset[int], ...]  # minute, hour, day of month, month, day of week (0-6)
    dom_any: bool
    dow_any: bool

    def __init__(
        self,
        text: str,
        every: float = 0.0,
        fields: tuple[frozenset[int], ...] = (),
        dom_any: bool = True,
        dow_any: bool = True,
    ) -> None:
        self._set(text=text, every=every, fields=fields, dom_any=dom_any, dow_any=dow_any)

    def day_matches(self, day: datetime.date) -> bool:
        _, _, dom, month, dow = self.fields
        if day.month not in month:
            return False
        in_dom = day.day in dom
        in_dow = (day.isoweekday() % 7) in dow
        if self.dom_any or self.dow_any:
            return in_dom and in_dow
        return in_dom or in_dow  # both restricted: either (Vixie cron)

    def next_after(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first run time strictly after `after` (an aware datetime), in its time zone."""
        import datetime as dt

        zone = after.tzinfo
        assert zone is not None
        minutes, hours = sorted(self.fields[0]), sorted(self.fields[1])
        day = after.date()
        for _ in range(HORIZON_DAYS):
            if self.day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        if wall.astimezone(dt.UTC) <= after.astimezone(dt.UTC):
                            continue  # (in UTC: within one zone, Python compares wall times)
                        # Skip a wall time that does not exist (DST starts): it does not
                        # survive a round trip through UTC.
                        back = wall.astimezone(dt.UTC).astimezone(zone)
                        if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
                            continue
                        return wall
            day += dt.timedelta(days=1)
        return None


def parse(value: object, at: str) -> Schedule:
    """A `schedule` value, or one ConfigError line naming the key and the field."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f'{at}: expected a schedule, like "*/5 * * * *", "@hourly" or "@every 30s"'
        )
    text = value.strip()
    if text.startswith("@every"):
        return Schedule(text, every=_interval(text[len("@every") :].strip(), text, at))
    if text.startswith("@"):
        if text not in NICKNAMES:
            names = ", ".join([*NICKNAMES, "@every N{s,m,h,d}"])
            raise ConfigError(f"{at}: {text!r} is not a schedule pyinit knows ({names})")
        return _cron(NICKNAMES[text], text, at)
    return _cron(text, text, at)


def _interval(word: str, text: str, at: str) -> float:
    number, unit = word[:-1], word[-1:]
    if unit not in UNITS or not number.isascii() or not number.isdigit() or not int(number):
        raise ConfigError(
            f"{at}: expected @every N with s, m, h or d (like @every 30s), got {text!r}"
        )
    return float(int(number) * UNITS[unit])


def _cron(expression: str, text: str, at: str) -> Schedule:
    words = expression.split()
    if len(words) != 5:
        raise ConfigError(
            f"{at}: expected 5 fields (minute hour day-of-month month day-of-week), got {text!r}"
        )
    sets = []
    for word, (name, low, high, names) in zip(words, FIELDS, strict=True):
        sets.append(_field(word, name, low, high, names, text, at))
    dow = frozenset(d % 7 for d in sets[4])
    return Schedule(
        text,
        fields=(sets[0], sets[1], sets[2], sets[3], dow),
        dom_any=words[2] == "*",
        dow_any=words[4] == "*",
    )


def _field(
    word: str, name: str, low: int, high: int, names: tuple[str, ...], text: str, at: str
) -> frozenset[int]:
    values: set[int] = set()
    for part in word.split(","):
        span, slash, step_text = part.partition("/")
        step = _number(step_text, name, 1, high, (), text, at) if slash else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _number(a, name, low, high, names, text, at)
            last = _number(b, name, low, high, names, text, at)
            if first > last:
                raise ConfigError(f"{at}: {name} range {span!r} runs backwards in {text!r}")
        else:
            first = _number(span, name, low, high, names, text, at)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(
    word: str, name: str, low: int, high: int, names: tuple[str, ...], text: str, at: str
) -> int:
    lowered = word.lower()
    if lowered in names:
        return names.index(lowered) + (1 if names is MONTHS else 0)
    if word.isascii() and word.isdigit() and low <= int(word) <= high:
        return int(word)
    raise ConfigError(f"{at}: {name} {word!r} is not in {low}-{high} in {text!r}")


def zone(environ_tz: str, at: str) -> datetime.tzinfo:
    """`TZ` if set (an IANA name, like Europe/Berlin), else UTC."""
    import datetime as dt

    if not environ_tz:
        return dt.UTC
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(environ_tz.removeprefix(":"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"{at}: TZ={environ_tz!r} is not a time zone here: {e}") from None
