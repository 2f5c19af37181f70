"""Cut a task's output stream into whole lines, each with the task's prefix (spec §7).

Bytes in, bytes out: nothing is decoded, so invalid UTF-8 and NULs pass unchanged.

Why whole lines: pyinit writes every task's lines into one stream. Writing only complete lines
is what keeps two tasks' output from mixing mid-line (the reference measured raw chunk
forwarding interleaving `t1 | aaat2 | bbb`). The price is that a partial line waits for its
newline; `flush()` writes it when the task's pipe closes.

Why `bytes.replace` on whole chunks: it runs at 1-3 GB/s, where a per-line split/join loop in
Python manages ~250 MB/s (docs/pid1.md §3). A `{time}` prefix keeps that speed: it is built
once per second (`per_second`) and used for a whole chunk (`prefix_fn`). The per-line path is
used only when each line needs a formatting of its own (JSON).
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: Lines longer than this are cut into pieces of this size (up to 3 bytes less, to keep a UTF-8
#: character whole: `utf8_cut`). 64 KiB is one pipe's worth, so a task that writes a huge line
#: without a newline cannot make pyinit buffer without bound.
LINE_LIMIT = 65536

#: Ends every piece of a cut line but the last, so a reader can tell a cut from a real newline.
CUT_MARK = b"\\"

NEWLINE = b"\n"


def per_second(
    build: Callable[[float], bytes], clock: Callable[[], float] = time.time
) -> Callable[[], bytes]:
    """A `prefix_fn` for a prefix that shows the time to the second (`{time}`): `build(now)`
    runs at most once a second, so such a prefix costs what a static one does."""
    last = -1
    prefix = b""

    def current() -> bytes:
        nonlocal last, prefix
        now = clock()
        if int(now) != last:
            last = int(now)
            prefix = build(now)
        return prefix

    return current


class LineSplitter:
    """One task stream's line assembler.

    `prefix` is put before each line (static bytes: the fast path). `prefix_fn`, when given, is
    called once per batch of lines (what one read gave) for their prefix: a `{time}` prefix at
    the fast path's speed. `format_line`, when given, replaces both: it receives one line
    without its newline and returns the bytes to write, newline included (JSON).
    """

    __slots__ = ("_format_line", "_partial", "_prefix_fn", "limit", "prefix")

    def __init__(
        self,
        prefix: bytes = b"",
        format_line: Callable[[bytes], bytes] | None = None,
        limit: int = LINE_LIMIT,
        prefix_fn: Callable[[], bytes] | None = None,
    ) -> None:
        self.prefix = prefix
        self._format_line = format_line
        self._prefix_fn = prefix_fn
        self.limit = limit
        self._partial = b""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._partial)

    def feed(self, chunk: bytes) -> bytes:
        """Take what the task wrote; return its complete lines, prefixed, ready to write."""
        return b"".join(self.parts(chunk))

    def parts(self, chunk: bytes) -> list[bytes | memoryview]:
        """`feed` as pieces to write in order (`os.writev`), so that the fast path copies
        nothing: the prefix, the line the last chunk left unfinished, and one `replace` of
        the chunk, seen through a memoryview up to its last newline."""
        nl = chunk.rfind(NEWLINE)
        if nl < 0:
            self._partial += chunk
            return [self._cut_overlong()] if len(self._partial) > self.limit else []
        partial = self._partial
        self._partial = chunk[nl + 1 :]
        prefix = self._prefix()
        if self._format_line is not None or self._overlong(partial, chunk, nl):
            complete = partial + chunk[: nl + 1] if partial else chunk[: nl + 1]
            out: list[bytes | memoryview] = [self._lines(complete, prefix)]
        elif not prefix:  # pass-through: the bytes as they came
            out = [partial, memoryview(chunk)[: nl + 1]]
        else:
            # The fast path: one C-level pass over the chunk. Its unfinished tail is replaced
            # too (it has no newline, so nothing changes in it) and left out of the view.
            body = chunk.replace(NEWLINE, NEWLINE + prefix)
            end = len(body) - len(self._partial) - len(prefix)
            out = [prefix, partial, memoryview(body)[:end]]
        if len(self._partial) > self.limit:
            out.append(self._cut_overlong(prefix))
        return out

    def _overlong(self, partial: bytes, chunk: bytes, nl: int) -> bool:
        """Whether a complete line of `partial + chunk[:nl + 1]` is longer than the limit,
        without joining them: the first line spans both, the others are in `chunk`."""
        if len(partial) + nl < self.limit:
            return False  # all of it is shorter than one line may be
        first = chunk.find(NEWLINE)
        return len(partial) + first > self.limit or self._has_overlong(chunk, first + 1, nl + 1)

    def flush(self) -> bytes:
        """The unfinished last line, at end of stream: written with a newline added when prefixed
        (so the next prefix starts a line); untouched in pass-through mode."""
        if not self._partial:
            return b""
        line, self._partial = self._partial, b""
        if self._format_line is not None:
            return self._format_line(line)
        prefix = self._prefix()
        return prefix + line + NEWLINE if prefix else line

    def _prefix(self) -> bytes:
        return self._prefix_fn() if self._prefix_fn is not None else self.prefix

    def _lines(self, complete: bytes, prefix: bytes) -> bytes:
        """Prefix every line of `complete`, which ends with a newline."""
        if len(complete) > self.limit and self._has_overlong(complete):
            return b"".join([self._line(piece, prefix) for piece in self._pieces(complete)])
        if self._format_line is not None:
            fmt = self._format_line
            return b"".join([fmt(line) for line in complete[:-1].split(NEWLINE)])
        if not prefix:
            return complete
        # The fast path: one C-level pass over the whole chunk.
        return prefix + complete[:-1].replace(NEWLINE, NEWLINE + prefix) + NEWLINE

    def _line(self, line: bytes, prefix: bytes) -> bytes:
        if self._format_line is not None:
            return self._format_line(line)
        return prefix + line + NEWLINE

    def _has_overlong(self, data: bytes, start: int = 0, end: int | None = None) -> bool:
        """Whether a line of `data[start:end]` (which ends with a newline) is longer than the
        limit.

        Jumps from the last newline of one window of limit+1 bytes to the next, so it costs a
        few C-level scans per chunk instead of one Python step per line.
        """
        pos, end, window = start, len(data) if end is None else end, self.limit + 1
        while end - pos > window:
            last = data.rfind(NEWLINE, pos, pos + window)
            if last < 0:
                return True
            pos = last + 1
        return False

    def _pieces(self, complete: bytes) -> list[bytes]:
        """Split `complete` into lines (no newlines), cutting each longer than the limit."""
        pieces: list[bytes] = []
        for line in complete[:-1].split(NEWLINE):
            start = 0
            while len(line) - start > self.limit:
                end = utf8_cut(line, start, start + self.limit)
                pieces.append(line[start:end] + CUT_MARK)
                start = end
            pieces.append(line[start:])
        return pieces

    def _cut_overlong(self, prefix: bytes | None = None) -> bytes:
        """Write out full-size pieces of an unfinished line that has grown past the limit;
        1..limit bytes stay for the next read."""
        if prefix is None:
            prefix = self._prefix()
        partial, limit = self._partial, self.limit
        out, start = [], 0
        while len(partial) - start > limit:
            end = utf8_cut(partial, start, start + limit)
            out.append(self._line(partial[start:end] + CUT_MARK, prefix))
            start = end
        self._partial = partial[start:]
        return b"".join(out)


def utf8_cut(data: bytes, start: int, end: int) -> int:
    """Where to cut `data` at `end` or just before it: at the start of the UTF-8 character
    `end` falls inside (at most 3 bytes back), so both pieces decode and join back into the
    character; `end` itself where the bytes there are not UTF-8 (nothing to keep whole)."""
    if end >= len(data) or data[end] & 0xC0 != 0x80:  # not inside a character
        return end
    for i in range(end - 1, max(start, end - 4) - 1, -1):
        byte = data[i]
        if byte & 0xC0 == 0x80:  # another continuation byte: keep looking for the lead
            continue
        size = (
            2
            if 0xC0 <= byte < 0xE0
            else 3
            if 0xE0 <= byte < 0xF0
            else 4
            if 0xF0 <= byte < 0xF8
            else 0
        )
        return i if i > start and i + size > end else end
    return end
