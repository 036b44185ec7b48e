"""Value spellings shared by the writers: money, phones, barcodes, clock strings.

Everything internal is an integer (cents, fen, seconds); these helpers turn those into the
exact spellings the landing contract lists, so every writer spells a value the same way.
"""

from __future__ import annotations

import datetime as dt

SHANGHAI_OFFSET = 8 * 3600
DAY = 86400


def yuan(cents: int) -> str:
    """`299.00`; negative amounts keep the sign in front (`-12.50`)."""
    sign = "-" if cents < 0 else ""
    c = -cents if cents < 0 else cents
    return f"{sign}{c // 100}.{c % 100:02d}"


def yuan_thousands(cents: int) -> str:
    """`1,299.00`: the Tmall export's grouped spelling of large amounts."""
    sign = "-" if cents < 0 else ""
    c = -cents if cents < 0 else cents
    return f"{sign}{c // 100:,}.{c % 100:02d}"


def ean13(body12: str) -> str:
    """Complete a 12-digit body with its EAN-13 check digit."""
    total = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def ean13_valid(code: str) -> bool:
    """True for a 13-digit string whose last digit is the right check digit."""
    return len(code) == 13 and code.isdigit() and ean13(code[:12]) == code


def phone_dashed(p: str) -> str:
    """`138-0013-8000`, the POS keyboard spelling."""
    return f"{p[:3]}-{p[3:7]}-{p[7:]}"


def phone_masked(p: str) -> str:
    """`138****8000`, what the marketplaces show of a buyer's number."""
    return p[:3] + "****" + p[7:]


class Clock:
    """Turns seconds since the first business day 00:00 Asia/Shanghai into strings.

    Timestamps are plain ints so the simulation stays cheap; date strings are cached by
    day index because the same few hundred days are formatted millions of times.
    """

    def __init__(self, start: dt.date) -> None:
        self.start = start
        self._iso: dict[int, str] = {}
        self._slash: dict[int, str] = {}

    def date(self, day: int) -> dt.date:
        return self.start + dt.timedelta(days=day)

    def iso(self, day: int) -> str:
        s = self._iso.get(day)
        if s is None:
            s = self._iso[day] = self.date(day).isoformat()
        return s

    def ymd(self, day: int) -> str:
        return self.iso(day).replace("-", "")

    def slash(self, day: int) -> str:
        s = self._slash.get(day)
        if s is None:
            s = self._slash[day] = self.iso(day).replace("-", "/")
        return s

    @staticmethod
    def hms(ts: int) -> str:
        r = ts % DAY
        return f"{r // 3600:02d}:{r % 3600 // 60:02d}:{r % 60:02d}"

    def local(self, ts: int) -> str:
        """`YYYY-MM-DD HH:MM:SS` local (Asia/Shanghai)."""
        return f"{self.iso(ts // DAY)} {self.hms(ts)}"

    def pos(self, ts: int) -> str:
        """`YYYY/MM/DD HH:MM:SS` local, the POS spelling."""
        return f"{self.slash(ts // DAY)} {self.hms(ts)}"

    def utc(self, ts: int) -> str:
        """ISO 8601 UTC with `Z`, the mall spelling."""
        u = ts - SHANGHAI_OFFSET
        return f"{self.iso(u // DAY)}T{self.hms(u)}Z"
