from __future__ import annotations

import json
import logging

import pytest

from workers.logs import JsonFormatter, configure_logging


def test_json_lines_carry_the_extra_fields() -> None:
    record = logging.LogRecord("workers.tasks", logging.INFO, __file__, 1, "routed %d", (3,), None)
    record.request_ids = [1, 2, 3]
    record.stage = "route"
    line = JsonFormatter().format(record)
    document = json.loads(line)
    assert document["message"] == "routed 3"
    assert document["level"] == "INFO" and document["logger"] == "workers.tasks"
    assert document["request_ids"] == [1, 2, 3] and document["stage"] == "route"
    assert "\n" not in line


def test_configure_switches_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level
    try:
        configure_logging(True)
        logging.getLogger("x").info("hello", extra={"job_id": "j1"})
        assert json.loads(capsys.readouterr().err)["job_id"] == "j1"
        configure_logging(False)
        logging.getLogger("x").info("hello")
        assert "INFO x: hello" in capsys.readouterr().err
    finally:
        root.handlers[:] = saved
        root.setLevel(saved_level)
