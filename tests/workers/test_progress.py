"""Progress bars: redrawn in place on a terminal, a few plain lines anywhere else."""

from __future__ import annotations

import io

from workers.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_bar_prints_whole_lines_and_not_per_update() -> None:
    log = io.StringIO()
    with progress_bar(5000, "replay", "req", stream=log) as bar:
        for _ in range(5000):
            bar.update(1)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines  # the start, perhaps a 30 s mark, the end
    assert lines[-1].startswith("replay: 100%") and "5000/5000" in lines[-1]


def test_a_bar_that_does_not_stay_leaves_no_blank_line_in_a_log() -> None:
    log = io.StringIO()
    with progress_bar(10, "reading", "req", stream=log, leave=False) as bar:
        bar.update(10)
    assert all(line.strip() for line in log.getvalue().splitlines())


def test_on_a_terminal_the_bar_redraws_in_place() -> None:
    terminal = _Terminal()
    with progress_bar(3, "job", "req", stream=terminal, mininterval=0) as bar:
        for _ in range(3):
            bar.update(1)
    assert terminal.getvalue().count("\r") >= 3
