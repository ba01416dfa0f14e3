"""`messplus zoo template MODEL FILE|--default` against a real database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ZooModel
from tests.cli.conftest import Run, one_error_line


def _template(sessions: sessionmaker[Session], name: str) -> str | None:
    with sessions.begin() as session:
        return session.scalars(select(ZooModel.chat_template).where(ZooModel.name == name)).one()


def test_a_template_is_checked_stored_and_reset(
    run: Callable[..., Run], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    assert run("zoo", "register", "--no-check").code == 0
    good = tmp_path / "llama.jinja"
    good.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    result = run("zoo", "template", "tiny-1b", str(good))
    assert result.code == 0, result
    assert _template(sessions, "tiny-1b") == good.read_text()
    assert _template(sessions, "small-8b") is None
    assert run("zoo", "template", "tiny-1b", "--default").code == 0
    assert _template(sessions, "tiny-1b") is None


def test_bad_templates_and_models_are_refused(
    run: Callable[..., Run], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    assert run("zoo", "register", "--no-check").code == 0
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}")
    assert "does not compile" in one_error_line(run("zoo", "template", "tiny-1b", str(broken)))
    missing = one_error_line(run("zoo", "template", "tiny-1b", str(tmp_path / "missing")))
    assert "cannot read" in missing
    good = tmp_path / "good.jinja"
    good.write_text("{{ messages[-1]['content'] }}")
    assert "unknown model 'nope'" in one_error_line(run("zoo", "template", "nope", str(good)))
    assert _template(sessions, "tiny-1b") is None
