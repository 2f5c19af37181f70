"""LineSplitter, pure: whole lines with the task's prefix, partial lines carried across chunks,
overlong lines cut and marked, bytes unchanged (spec §7, docs/pid1.md §3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit.output import CUT_MARK, LINE_LIMIT, LineSplitter, per_second, utf8_cut

pytestmark = pytest.mark.timeout(10)


def no_utf8_leads(data: bytes) -> bytes:
    """`data` without UTF-8 lead bytes (0xC0-0xFF become continuation bytes), so every cut is
    exactly at the limit and `restore` can tell a cut from a real line ending in a backslash;
    cuts that keep a UTF-8 character whole are tested on their own below."""
    return data.translate(LEADLESS)


LEADLESS = bytes(b & 0xBF if b >= 0xC0 else b for b in range(256))

#: Chunks of up to 40 bytes with many newlines (from \x01) and backslashes (from \x02): lines of
#: every length around a small limit, and real lines that end like a cut mark.
chunk_lists = st.lists(
    st.binary(max_size=40).map(
        lambda b: no_utf8_leads(b).replace(b"\x01", b"\n").replace(b"\x02", b"\\")
    ),
    max_size=20,
)


def run(splitter: LineSplitter, chunks: list[bytes]) -> bytes:
    """Everything the splitter gives for `chunks`, then its flush at end of stream."""
    return b"".join(splitter.feed(chunk) for chunk in chunks) + splitter.flush()


def angle(line: bytes) -> bytes:
    """A per-line formatter (the `{time}`/JSON path) that shows exactly what it received."""
    return b"<" + line + b">\n"


def restore(output: bytes, prefix: bytes, limit: int, formatted: bool = False) -> bytes:
    """Undo the splitter: drop each line's prefix (or the formatter's brackets) and join the
    pieces of cut lines. Checks on the way that every line has its decoration and that only
    cut pieces (exactly `limit` bytes plus the mark) end with the mark."""
    assert output.endswith(b"\n"), output[-50:]
    restored = []
    for line in output[:-1].split(b"\n"):
        if formatted:
            assert line.startswith(b"<"), line[:50]
            assert line.endswith(b">"), line[-50:]
            content = line[1:-1]
        else:
            assert line.startswith(prefix), line[:50]
            content = line[len(prefix) :]
        assert len(content) <= limit + len(CUT_MARK), len(content)
        if len(content) == limit + len(CUT_MARK) and content.endswith(CUT_MARK):
            restored.append(content[: -len(CUT_MARK)])
        else:
            restored.append(content + b"\n")
    return b"".join(restored)


def test_prefixes_every_line() -> None:
    """should put the prefix before every complete line of a chunk."""
    s = LineSplitter(b"web: ")
    assert s.feed(b"one\ntwo\n\nthree\n") == b"web: one\nweb: two\nweb: \nweb: three\n"
    assert s.pending == 0
    assert s.flush() == b""


def test_partial_line_is_carried_to_the_next_chunk() -> None:
    """should hold back an unfinished line and write it whole, once, when its newline comes."""
    s = LineSplitter(b"t: ")
    assert s.feed(b"aaa") == b""
    assert s.pending == 3
    assert s.feed(b"AAA") == b""
    assert s.feed(b"\nbb") == b"t: aaaAAA\n"
    assert s.pending == 2
    assert s.feed(b"b\ncc\nd") == b"t: bbb\nt: cc\n"
    assert s.flush() == b"t: d\n"
    assert s.pending == 0


def test_newline_alone_completes_the_partial_line() -> None:
    """should write the held-back line when a chunk is just its newline."""
    s = LineSplitter(b"t: ")
    s.feed(b"abc")
    assert s.feed(b"\n") == b"t: abc\n"
    assert s.feed(b"\n") == b"t: \n"


def test_flush_adds_a_newline_when_prefixed() -> None:
    """should end the unterminated last line with a newline at EOF, so the next prefix starts
    a line of its own."""
    s = LineSplitter(b"t: ")
    assert s.feed(b"done\nno newline") == b"t: done\n"
    assert s.flush() == b"t: no newline\n"
    assert s.flush() == b""  # only once


def test_flush_is_untouched_in_pass_through() -> None:
    """should give the unterminated last line back as it was, with no prefix and no newline
    added, when the prefix is empty."""
    s = LineSplitter(b"")
    assert s.feed(b"a\nb\nno newline") == b"a\nb\n"
    assert s.flush() == b"no newline"


def test_flush_with_nothing_pending() -> None:
    """should give nothing at EOF when the stream ended with a newline or was empty."""
    assert LineSplitter(b"t: ").flush() == b""
    assert LineSplitter(b"t: ", format_line=angle).flush() == b""
    s = LineSplitter(b"t: ")
    s.feed(b"x\n")
    assert s.flush() == b""


def test_line_at_the_limit_is_not_cut() -> None:
    """should keep a line of exactly LINE_LIMIT bytes whole, in one chunk or many."""
    line = b"x" * LINE_LIMIT
    assert LineSplitter(b"t: ").feed(line + b"\n") == b"t: " + line + b"\n"
    s = LineSplitter(b"t: ")
    assert s.feed(line) == b""
    assert s.pending == LINE_LIMIT
    assert s.feed(b"\n") == b"t: " + line + b"\n"
    s = LineSplitter(b"t: ")
    s.feed(line)
    assert s.flush() == b"t: " + line + b"\n"


def test_line_over_the_limit_is_cut_and_marked() -> None:
    """should cut a line one byte over LINE_LIMIT into a LINE_LIMIT piece ending with the
    backslash mark and a 1-byte rest, each with its prefix."""
    line = b"a" * LINE_LIMIT + b"b"
    expected = b"t: " + b"a" * LINE_LIMIT + CUT_MARK + b"\nt: b\n"
    assert CUT_MARK == b"\\"
    assert LineSplitter(b"t: ").feed(line + b"\n") == expected
    s = LineSplitter(b"t: ")  # the same line, arriving without its newline
    assert s.feed(line) == b"t: " + b"a" * LINE_LIMIT + CUT_MARK + b"\n"
    assert s.pending == 1
    assert s.feed(b"\n") == b"t: b\n"


def test_huge_unterminated_line_is_written_in_pieces() -> None:
    """should write a 1 MiB line without a newline as it comes, in LINE_LIMIT pieces, never
    holding more than LINE_LIMIT bytes back (a task cannot make pyinit buffer without bound)."""
    s = LineSplitter(b"t: ")
    out = []
    for _ in range(16):
        out.append(s.feed(b"x" * LINE_LIMIT))
        assert s.pending <= LINE_LIMIT
    out.append(s.flush())
    lines = b"".join(out).split(b"\n")
    assert lines[-1] == b""
    assert lines[:-1] == [b"t: " + b"x" * LINE_LIMIT + CUT_MARK] * 15 + [b"t: " + b"x" * LINE_LIMIT]


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_cut_keeps_utf8_characters_whole(char: str) -> None:
    """should cut an overlong UTF-8 line only between characters (at most 3 bytes before the
    limit), so every piece decodes and the pieces join back into the line: whatever byte of
    a character the limit falls on, in one chunk or byte by byte."""
    limit = 10
    for offset in range(4):
        line = ("a" * offset + char * 12).encode()
        for chunks in ([line + b"\n"], [bytes([b]) for b in line + b"\n"]):
            out = run(LineSplitter(b"t: ", limit=limit), chunks)
            pieces = [p.removeprefix(b"t: ") for p in out.split(b"\n")[:-1]]
            assert all(p.endswith(CUT_MARK) for p in pieces[:-1]), pieces
            body = [p.removesuffix(CUT_MARK) for p in pieces[:-1]] + pieces[-1:]
            assert all(limit - 3 <= len(p) <= limit for p in body[:-1]), body
            assert [p.decode() for p in body]  # strict: no character was split
            assert b"".join(body) == line


def test_cut_of_bytes_that_are_not_utf8_stays_at_the_limit() -> None:
    """should cut bytes that are not UTF-8 (continuation bytes with no lead, a lead byte
    right at the start of the piece) exactly at the limit: nothing to keep whole."""
    assert utf8_cut(b"\x80" * 30, 0, 10) == 10
    assert utf8_cut(b"\xe2" + b"\x82" * 29, 0, 10) == 10  # the lead is 9 bytes back
    assert utf8_cut(b"aaaaaaaaa\xe2\x82\xac", 0, 10) == 9
    assert utf8_cut(b"aaaaaaaaa\xe2\x82\xac", 9, 10) == 10  # would leave an empty piece
    assert utf8_cut(b"aaaaaaaa\xc3\xa9", 0, 10) == 10  # the character ends at the limit
    out = LineSplitter(b"", limit=10).feed(b"\xff" * 25 + b"\n")
    assert (
        out
        == b"\xff" * 10 + CUT_MARK + b"\n" + b"\xff" * 10 + CUT_MARK + b"\n" + b"\xff" * 5 + b"\n"
    )


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        st.characters(blacklist_characters="\n\\", blacklist_categories=["Cs"]), max_size=60
    ),
    sizes=st.lists(st.integers(1, 17), min_size=1, max_size=8),
    limit=st.integers(4, 12),
)
def test_property_utf8_round_trip(text: str, sizes: list[int], limit: int) -> None:
    """should, for any UTF-8 text and chunking, give pieces that each decode and join back
    into the text."""
    data = text.encode() + b"\n"
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    out = run(LineSplitter(b"", format_line=angle, limit=limit), chunks)
    pieces = [p[1:-1] for p in out.split(b"\n")[:-1]]
    body = [p.removesuffix(CUT_MARK) for p in pieces]
    assert all(p.endswith(CUT_MARK) for p in pieces[:-1])
    assert [p.decode() for p in body]
    assert b"".join(body) == text.encode()


def test_overlong_line_among_short_ones() -> None:
    """should cut only the overlong line of a chunk and keep the short lines around it whole,
    in order."""
    chunk = b"first\n" + b"y" * (2 * LINE_LIMIT + 5) + b"\nlast\n"
    out = LineSplitter(b"t: ").feed(chunk)
    assert out.split(b"\n") == [
        b"t: first",
        b"t: " + b"y" * LINE_LIMIT + CUT_MARK,
        b"t: " + b"y" * LINE_LIMIT + CUT_MARK,
        b"t: yyyyy",
        b"t: last",
        b"",
    ]


def test_overlong_line_in_pass_through_is_cut_too() -> None:
    """should cut an overlong line in pass-through mode as well (with the mark), so a stream
    still never holds more than LINE_LIMIT bytes back."""
    s = LineSplitter(b"", limit=4)
    assert s.feed(b"abcdefgh\nij") == b"abcd\\\nefgh\n"
    assert s.flush() == b"ij"


def test_bytes_pass_unchanged() -> None:
    """should pass invalid UTF-8, NUL, \\r and escape bytes through byte for byte."""
    data = b"\xff\xfebad\x80\n\x00nul\x00\n\r\ncr\rcr\n\x1b[31mred\x1b[0m\n\xc3\x28\n"
    out = LineSplitter(b"t: ").feed(data)
    assert out == b"".join(b"t: " + line + b"\n" for line in data[:-1].split(b"\n"))
    assert LineSplitter(b"").feed(data) == data


def test_prefix_may_hold_any_bytes() -> None:
    """should use a prefix with colours or non-UTF-8 bytes as given."""
    prefix = b"\x1b[32mweb\x1b[0m \xff: "
    assert LineSplitter(prefix).feed(b"a\nb\n") == prefix + b"a\n" + prefix + b"b\n"


def test_format_line_gets_each_line_without_its_newline() -> None:
    """should call the per-line formatter once per complete line, without the newline, and
    write exactly what it returns."""
    seen: list[bytes] = []

    def fmt(line: bytes) -> bytes:
        seen.append(line)
        return b"[" + line + b"]\n"

    s = LineSplitter(b"ignored: ", format_line=fmt)
    assert s.feed(b"a\nb") == b"[a]\n"
    assert s.feed(b"c\n\n") == b"[bc]\n[]\n"
    assert s.feed(b"tail") == b""
    assert s.flush() == b"[tail]\n"
    assert seen == [b"a", b"bc", b"", b"tail"]


def test_format_line_gets_cut_pieces_with_the_mark() -> None:
    """should hand the formatter each piece of an overlong line, the mark included."""
    s = LineSplitter(format_line=angle, limit=3)
    assert s.feed(b"abcdefg\nhi") == b"<abc\\>\n<def\\>\n<g>\n"
    assert s.feed(b"jklm") == b"<hij\\>\n"
    assert s.flush() == b"<klm>\n"


def test_prefix_fn_is_asked_once_per_batch() -> None:
    """should call prefix_fn once per batch of complete lines (one read), use its answer for
    every line of the batch, its cut pieces and the flushed tail, and not call it for a chunk
    with no complete line."""
    answers = iter([b"[1] ", b"[2] ", b"[3] ", b"[4] "])
    calls = []

    def prefix() -> bytes:
        calls.append(1)
        return next(answers)

    s = LineSplitter(prefix_fn=prefix, limit=4)
    assert s.feed(b"a\nb\npart") == b"[1] a\n[1] b\n"
    assert s.feed(b"ial") == b"[2] part\\\n"  # the partial line passed the limit: cut now
    assert s.feed(b"\nc\n") == b"[3] ial\n[3] c\n"
    assert s.feed(b"") == b""
    assert s.feed(b"tail") == b""
    assert s.flush() == b"[4] tail\n"
    assert len(calls) == 4


def test_prefix_fn_empty_is_pass_through() -> None:
    """should pass lines through untouched when prefix_fn gives an empty prefix."""
    s = LineSplitter(prefix_fn=lambda: b"")
    assert s.feed(b"a\nb") == b"a\n"
    assert s.flush() == b"b"


def test_per_second_builds_once_a_second() -> None:
    """should build a `{time}` prefix again only when the clock's second changes."""
    now = [100.1]
    built = []

    def build(t: float) -> bytes:
        built.append(t)
        return b"%d: " % int(t)

    prefix = per_second(build, clock=lambda: now[0])
    assert prefix() == b"100: "
    now[0] = 100.9
    assert prefix() == b"100: "
    now[0] = 101.0
    assert prefix() == b"101: "
    assert built == [100.1, 101.0]
    s = LineSplitter(prefix_fn=prefix)
    now[0] = 250.5
    assert s.feed(b"x\ny\n") == b"250: x\n250: y\n"


@pytest.mark.timeout(60)
@settings(max_examples=200, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(1, 12))
def test_property_prefix_fn_round_trip(chunks: list[bytes], limit: int) -> None:
    """should, with a prefix_fn, lose, add or reorder nothing either."""
    data = b"".join(chunks)
    out = run(LineSplitter(prefix_fn=lambda: b"T| ", limit=limit), chunks)
    if not data:
        assert out == b""
        return
    expected = data if data.endswith(b"\n") else data + b"\n"
    assert restore(out, b"T| ", limit) == expected


@pytest.mark.timeout(30)
def test_round_trip_large_stream() -> None:
    """should give back a 20 MB stream of lines of every length exactly, whatever the chunk
    boundaries."""
    import random

    rng = random.Random(7)
    parts = []
    for i in range(20000):
        length = (
            rng.choice((0, 1, 80, 500, LINE_LIMIT - 1, LINE_LIMIT, LINE_LIMIT + 1))
            if i % 50 == 0
            else rng.randrange(0, 200)
        )
        parts.append(
            no_utf8_leads(bytes(rng.getrandbits(8) for _ in range(min(length, 40)))).replace(
                b"\n", b""
            )
            + b"z" * max(0, length - 40)
            + b"\n"
        )
    data = b"".join(parts) + b"unterminated"
    chunks, pos = [], 0
    while pos < len(data):
        size = rng.choice((1, 100, 4096, 65536, 65537, 200000))
        chunks.append(data[pos : pos + size])
        pos += size
    out = run(LineSplitter(b"task: "), chunks)
    assert restore(out, b"task: ", LINE_LIMIT) == data + b"\n"


@pytest.mark.timeout(60)
@settings(max_examples=400, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(1, 12), prefix=st.sampled_from([b"p: ", b"\\"]))
def test_property_prefixed_round_trip(chunks: list[bytes], limit: int, prefix: bytes) -> None:
    """should, for any sequence of chunks, give output whose lines all carry the prefix and
    which, with prefixes and cut marks removed, is the input exactly (plus a final newline)."""
    data = b"".join(chunks)
    out = run(LineSplitter(prefix, limit=limit), chunks)
    if not data:
        assert out == b""
        return
    expected = data if data.endswith(b"\n") else data + b"\n"
    assert restore(out, prefix, limit) == expected


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(1, 12))
def test_property_formatter_round_trip(chunks: list[bytes], limit: int) -> None:
    """should, on the per-line formatter path too, lose, add or reorder nothing."""
    data = b"".join(chunks)
    out = run(LineSplitter(format_line=angle, limit=limit), chunks)
    if not data:
        assert out == b""
        return
    expected = data if data.endswith(b"\n") else data + b"\n"
    assert restore(out, b"", limit, formatted=True) == expected


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(1, 12))
def test_property_pass_through(chunks: list[bytes], limit: int) -> None:
    """should, with no prefix, give back the input with nothing but cut marks inserted, and
    the unterminated tail untouched."""
    data = b"".join(chunks)
    s = LineSplitter(b"", limit=limit)
    body = b"".join(s.feed(chunk) for chunk in chunks)
    tail = s.flush()
    assert b"\n" not in tail
    assert len(tail) <= limit
    if not data or data.endswith(b"\n"):
        assert tail == b""
        assert body == b"" or restore(body, b"", limit) == data
    else:
        assert tail, "an unterminated line must come back at EOF"
        assert restore(body + tail + b"\n", b"", limit) == data + b"\n"


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(1, 12))
def test_property_pending_is_bounded(chunks: list[bytes], limit: int) -> None:
    """should never hold more than `limit` bytes of an unfinished line."""
    s = LineSplitter(b"p: ", limit=limit)
    for chunk in chunks:
        s.feed(chunk)
        assert s.pending <= limit


# -- parts(): the pieces the streams write with one writev ------------------------------------


def test_parts_copy_nothing_on_the_fast_path() -> None:
    """should give the prefix, the line the last chunk left unfinished, and a view of one
    replaced chunk: no piece is a joined copy of the chunk."""
    s = LineSplitter(b"t: ")
    assert b"".join(s.parts(b"one\ntw")) == b"t: one\n"
    parts = s.parts(b"o\nthree\nfo")
    assert parts[:2] == [b"t: ", b"tw"]
    assert isinstance(parts[2], memoryview)
    assert bytes(parts[2]) == b"o\nt: three\n"
    assert s.flush() == b"t: fo\n"


def test_parts_in_pass_through_are_the_chunk_itself() -> None:
    """should hand on an unprefixed chunk as a view of it, after what the last one left."""
    s = LineSplitter(b"")
    assert b"".join(s.parts(b"ab\ncd")) == b"ab\n"
    parts = s.parts(b"e\nf")
    assert parts[0] == b"cd"
    assert isinstance(parts[1], memoryview)
    assert bytes(parts[1]) == b"e\n"


def test_overlong_line_that_spans_two_chunks_is_cut() -> None:
    """should see that the line the last chunk left plus this chunk's first line is over the
    limit, although neither part is, and cut it as if it had come in one piece."""
    s = LineSplitter(b"t: ", limit=8)
    assert s.feed(b"abcdef") == b""
    assert s.feed(b"ghij\nok\n") == b"t: abcdefgh\\\nt: ij\nt: ok\n"
    s = LineSplitter(b"t: ", limit=8)
    assert s.feed(b"abcd") == b""
    assert s.feed(b"efgh\nok\n") == b"t: abcdefgh\nt: ok\n"  # exactly the limit: whole


def reference(chunks: list[bytes], prefix: bytes, limit: int) -> bytes:
    """The splitter's output for ASCII input, worked out line by line: every line cut into
    pieces of `limit` bytes (all but the last marked), each piece prefixed."""
    data = b"".join(chunks)
    *complete, last = data.split(b"\n")
    lines = [(line, True) for line in complete] + ([(last, False)] if last else [])
    out = []
    for line, ended in lines:  # ended: it had its newline (else the flush adds one if prefixed)
        pieces = [line[i : i + limit] for i in range(0, max(len(line), 1), limit)]
        out += [prefix + p + CUT_MARK + b"\n" for p in pieces[:-1]]
        out.append(prefix + pieces[-1] + (b"\n" if prefix or ended else b""))
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.binary(max_size=30).map(lambda b: bytes(65 + x % 3 if x % 4 else 10 for x in b))),
    st.sampled_from([b"", b"t: ", b"\xff"]),
    st.integers(min_value=2, max_value=9),
)
def test_property_parts_match_the_line_by_line_reference(
    chunks: list[bytes], prefix: bytes, limit: int
) -> None:
    """should give, chunk by chunk and then at the end, what the line-by-line model does."""
    s = LineSplitter(prefix, limit=limit)
    got = b"".join(b"".join(s.parts(c)) for c in chunks) + s.flush()
    assert got == reference(chunks, prefix, limit)
