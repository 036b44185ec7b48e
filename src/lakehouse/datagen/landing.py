"""Writes landing files and keeps the per-file and per-line truth that goes with them."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

from .dirt import layer
from .formats import Clock
from .records import DATASETS, Dataset


@dataclass
class Written:
    """What was delivered in one file, kept so the file can be delivered again verbatim."""

    dataset: str
    day: int
    name: str
    path: pathlib.Path
    data_lines: int
    bad: list[tuple[int, str]]
    late: list[tuple[int, str, str]]


@dataclass
class Landing:
    root: pathlib.Path
    clock: Clock
    files: list[tuple[str, ...]] = field(default_factory=list)
    bad: list[tuple[str, ...]] = field(default_factory=list)
    late: list[tuple[str, ...]] = field(default_factory=list)
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    written: dict[tuple[str, int, str], Written] = field(default_factory=dict)
    by_day: dict[tuple[str, int], list[Written]] = field(default_factory=dict)

    def _dir(self, ds: Dataset, day: int) -> pathlib.Path:
        d = self.root / ds.source / f"dt={self.clock.iso(day)}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def exists(self, dataset: str, day: int, name: str) -> bool:
        return (dataset, day, name) in self.written

    def write(
        self,
        dataset: str,
        day: int,
        name: str,
        lines: list[str | bytes],
        bad: list[tuple[int, str]] | None = None,
        late: list[tuple[int, str, str]] | None = None,
        *,
        header: tuple[str, ...] = (),
        crlf: bool = False,
        correction_of: str = "",
    ) -> Written:
        """Write one file; `bad`/`late` index into `lines` (0-based, header excluded)."""
        ds = DATASETS[dataset]
        nl = "\r\n" if crlf else "\n"
        chunks: list[bytes] = [b"\xef\xbb\xbf"] if ds.bom else []
        text: list[str] = []
        if ds.fmt == "csv":
            text.append(ds.render(header or ds.header))
        for line in lines:
            if isinstance(line, bytes):
                if text:
                    chunks.append((nl.join(text) + nl).encode(ds.encoding))
                    text = []
                chunks.append(line + nl.encode("ascii"))
            else:
                text.append(line)
        if text:
            chunks.append((nl.join(text) + nl).encode(ds.encoding))
        path = self._dir(ds, day) / name
        path.write_bytes(b"".join(chunks))
        w = Written(dataset, day, name, path, len(lines), list(bad or []), list(late or []))
        self._record(w, redelivery_of="", correction_of=correction_of)
        return w

    def redeliver(self, orig: Written, day: int) -> Written | None:
        """Deliver an earlier file again, same name and bytes, in a later dt folder."""
        ds = DATASETS[orig.dataset]
        if self.exists(orig.dataset, day, orig.name) or orig.day >= day:
            return None
        path = self._dir(ds, day) / orig.name
        path.write_bytes(orig.path.read_bytes())
        w = Written(orig.dataset, day, orig.name, path, orig.data_lines, orig.bad, orig.late)
        self._record(w, redelivery_of=self.clock.iso(orig.day), correction_of="")
        return w

    def _record(self, w: Written, *, redelivery_of: str, correction_of: str) -> None:
        ds = DATASETS[w.dataset]
        dt_s = self.clock.iso(w.day)
        self.files.append(
            (ds.source, w.dataset, dt_s, w.name, str(w.data_lines), redelivery_of, correction_of)
        )
        first = ds.first_data_line
        for i, kind in w.bad:
            self.bad.append((ds.source, w.dataset, dt_s, w.name, str(i + first), kind, layer(kind)))
        for i, bdate, key in w.late:
            self.late.append((ds.source, w.dataset, dt_s, w.name, str(i + first), bdate, key))
        s = self.summary.setdefault(w.dataset, {"files": 0, "data_lines": 0})
        s["files"] += 1
        s["data_lines"] += w.data_lines
        if not redelivery_of:
            self.written[(w.dataset, w.day, w.name)] = w
            self.by_day.setdefault((w.dataset, w.day), []).append(w)
