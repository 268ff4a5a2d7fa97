"""The command line: users create, import (all or nothing), export (projected for a tier), seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.db import session
from registry.models import File, Record, User
from seed.documents import write_pdf

from .canary import CONF, DRAFT, REG, load_canaries
from .conftest import login
from .factories import record_data


def _counts(app):
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        return (
            session.scalar(select(func.count()).select_from(Record)),
            session.scalar(select(func.count()).select_from(File)),
            len(list(files_dir.iterdir())) if files_dir.exists() else 0,
        )


def test_users_create_with_password_from_stdin(app, runner, client):
    result = runner.invoke(
        args=["users", "create", "Officer@Test.example", "--role", "enforcement", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a long enough password" not in result.output
    assert login(client, "officer@test.example", "a long enough password").status_code == 302


def test_party_user_needs_an_existing_party(app, runner):
    result = runner.invoke(
        args=["users", "create", "p@test.example", "--role", "party", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code != 0 and "--party" in result.output
    result = runner.invoke(
        args=["users", "create", "p@test.example", "--role", "party", "--party", "QQ", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code != 0 and "QQ is not a CITES Party" in result.output
    result = runner.invoke(
        args=["users", "create", "p@test.example", "--role", "party", "--party", "fr", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert session.scalar(select(User.party_iso).where(User.email == "p@test.example")) == "FR"


def test_users_create_rejects_bad_input_clearly(runner):
    result = runner.invoke(
        args=["users", "create", "not-an-email", "--role", "reader", "--password-stdin"], input="short\n"
    )
    assert result.exit_code != 0
    assert "email: Enter a valid e-mail address." in result.output
    assert "password: Use at least 12 characters." in result.output
    bad_role = runner.invoke(
        args=["users", "create", "x@test.example", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
    )
    assert bad_role.exit_code != 0 and "admin" in bad_role.output


def test_users_create_refuses_duplicates(runner):
    args = ["users", "create", "dup@test.example", "--role", "reader", "--password-stdin"]
    assert runner.invoke(args=args, input="a long enough password\n").exit_code == 0
    again = runner.invoke(args=args, input="a long enough password\n")
    assert again.exit_code != 0 and "already exists" in again.output


def test_import_creates_records_with_files(app, runner, tmp_path):
    write_pdf(tmp_path / "plan.pdf", "Plan", "A national plan.")
    payload = {"records": [record_data(files=[{"path": "plan.pdf", "language": "en", "tier": "public"}])]}
    (tmp_path / "in.json").write_text(json.dumps(payload))
    result = runner.invoke(args=["import", str(tmp_path / "in.json")])
    assert result.exit_code == 0, result.output
    assert "Imported 1 record(s)." in result.output
    records, files, stored = _counts(app)
    assert (records, files, stored) == (1, 1, 1)


def test_malformed_import_changes_nothing_and_names_every_problem(app, runner, tmp_path):
    write_pdf(tmp_path / "ok.pdf", "Fine", "A fine file.")
    (tmp_path / "fake.pdf").write_text("this is not a PDF")
    good = record_data(title="A good record", files=[{"path": "ok.pdf", "language": "en"}])
    problems = [
        record_data(title="Unknown key", colour="blue"),
        record_data(title="Bad type", type="poster"),
        record_data(title="Bad Party", party="QQ"),
        record_data(title="Bad taxon", taxa=["Dodo ineptus"]),
        record_data(title="Missing file", files=[{"path": "nowhere.pdf", "language": "en"}]),
        record_data(title="Escaping path", files=[{"path": "../etc/passwd", "language": "en"}]),
        record_data(title="Fake PDF", files=[{"path": "fake.pdf", "language": "en"}]),
        record_data(title="Bad tier", confidentiality={"level": "secret"}),
        record_data(title="Bad detail", details={"responsible_agency": "X", "stages": ["teleport"]}),
        record_data(title="Needs party", party=None),
        record_data(type="network", title="Bad member", details={"coordinator": "X", "members": ["nobody"]}),
        record_data(title="   "),
        record_data(title="NUL \x00 inside"),
    ]
    (tmp_path / "in.json").write_text(json.dumps({"records": [good, *problems], "extra": 1}))
    before = _counts(app)
    result = runner.invoke(args=["import", str(tmp_path / "in.json")])
    assert result.exit_code != 0
    assert _counts(app) == before == (0, 0, 0)
    output = result.output
    for expected in [
        "Unknown top-level field: extra",
        "(Unknown key): colour: Unknown field.",
        "(Bad type): type: Must be one of",
        "(Bad Party): party: QQ is not a CITES Party",
        "(Bad taxon): taxa: Dodo ineptus is not in the taxon checklist",
        "(Missing file): files.1.path: nowhere.pdf: file not found",
        "(Escaping path): files.1.path: ../etc/passwd: must be a path relative to the JSON file",
        "(Fake PDF): files.1.path: fake.pdf: Only PDF, DOCX, ODT, XLSX, JPEG and PNG files are accepted.",
        "(Bad tier): confidentiality.level: Must be one of",
        "(Bad detail): details.stages.0: Must be one of",
        "(Needs party): party: A national record needs its Party.",
        "Bad member: details.members: nobody is not a rescue centre.",
        "title: Must not be empty.",
        "title: Contains control characters",
    ]:
        assert expected in output, expected
    assert "Nothing was imported: " in output


@pytest.mark.parametrize("content", ["{not json", "\xff\xfe", "[1, 2]", '{"records": "x"}'])
def test_import_of_a_broken_file_is_refused(app, runner, tmp_path, content):
    path = tmp_path / "in.json"
    path.write_bytes(content.encode("latin-1"))
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert _counts(app) == (0, 0, 0)


@pytest.mark.parametrize(
    ("tier", "absent"),
    [("public", (CONF, REG, DRAFT)), ("registered", (CONF, DRAFT)), ("confidential", (DRAFT,))],
)
def test_export_is_projected_for_its_tier(app, runner, tmp_path, tier, absent):
    with app.app_context():
        load_canaries()
    out = tmp_path / "out" / "export.json"
    out.parent.mkdir()
    result = runner.invoke(args=["export", str(out), "--tier", tier])
    assert result.exit_code == 0, result.output
    written = [out.read_text()] + [p.name + p.read_bytes().decode("latin-1") for p in out.parent.rglob("*.*")]
    for text in written:
        for marker in absent:
            assert marker not in text
    data = json.loads(out.read_text())
    assert data["records"] and all(r["status"] == "published" for r in data["records"])
    if tier == "confidential":
        assert CONF in out.read_text()


def test_export_then_import_round_trips(app, app_factory, runner, tmp_path):
    with app.app_context():
        load_canaries()
    out = tmp_path / "export.json"
    assert runner.invoke(args=["export", str(out), "--tier", "registered"]).exit_code == 0
    exported = json.loads(out.read_text())
    other = app_factory("b")
    result = other.test_cli_runner().invoke(args=["import", str(out)])
    assert result.exit_code == 0, result.output
    with other.app_context():
        titles = sorted(session.scalars(select(Record.title)))
        assert titles == sorted(r["title"] for r in exported["records"])
        assert session.scalar(select(func.count()).select_from(File)) == sum(
            len(r["files"]) for r in exported["records"]
        )


def test_an_imported_record_is_created_and_published_as_the_desk_does(app, runner, tmp_path):
    """Issue 12: the import creates through ``records.write`` and publishes through ``records.review``:
    a published record has its kept version and its trail, a network names a centre of the same file
    by its ref, and no one is e-mailed for it."""
    from registry.models import AuditEvent, RecordVersion

    from .factories import make_user

    with app.app_context():
        # A focal point of the Party: publishing on the desk would e-mail it.
        make_user("party", "ZA")
    centre = record_data(type="rescue_centre", title="Coastal rescue centre", ref="centre-1")
    network = record_data(
        type="network", title="Coastal network", details={"coordinator": "Office", "members": ["centre-1"]}
    )
    draft = record_data(title="Draft protocol", status="draft")
    # The network comes first in the file: its centre is created before it all the same.
    (tmp_path / "in.json").write_text(json.dumps({"records": [network, centre, draft]}))
    result = runner.invoke(args=["import", str(tmp_path / "in.json")])
    assert result.exit_code == 0, result.output
    with app.app_context():
        by_title = {r.title: r for r in session.scalars(select(Record))}
        assert [m.title for m in by_title["Coastal network"].members] == ["Coastal rescue centre"]
        for title in ("Coastal network", "Coastal rescue centre"):
            record = by_title[title]
            kept = select(RecordVersion).where(RecordVersion.record_id == record.id)
            versions = list(session.scalars(kept))
            assert record.status == "published" and [v.number for v in versions] == [1]
            assert versions[0].payload["title"] == title
            actions = session.scalars(select(AuditEvent.action).where(AuditEvent.record_id == record.id))
            assert sorted(actions) == ["create", "publish"]
        assert by_title["Draft protocol"].status == "draft"
        assert session.scalar(select(func.count()).select_from(RecordVersion)) == 2
    outbox = Path(app.config["MAIL_OUTBOX"])
    assert not outbox.exists() or list(outbox.iterdir()) == []


def test_a_partys_import_stays_a_draft_and_cannot_publish(app, tmp_path):
    """Only the Secretariat imports records in another status than a draft: a Party's import cannot
    publish past the review."""
    from registry.errors import Invalid
    from registry.services import imports

    from .factories import make_user

    with app.app_context():
        party = make_user("party", "ZA")
        files_dir = Path(app.config["FILES_DIR"])
        with pytest.raises(Invalid) as refused:
            payload = {"records": [record_data(status="published")]}
            imports.import_records(party, payload, tmp_path, files_dir, 1 << 20)
        assert any("status: only the Secretariat" in p for p in refused.value.messages["problems"])
        without = {k: v for k, v in record_data(title="Party's own").items() if k != "status"}
        report = imports.import_records(party, {"records": [without]}, tmp_path, files_dir, 1 << 20)
        (record_id,) = report.created
        assert session.get(Record, record_id).status == "draft"
