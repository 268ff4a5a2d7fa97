"""Bad input to the pages gets a clear answer, never a 500 or a traceback."""

from __future__ import annotations

from typing import Any

import pytest
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import select

from registry.db import session
from registry.errors import Invalid
from registry.models import Party, Record
from registry.services.records import write
from schemas import load_record

from .conftest import login
from .factories import PASSWORD, import_payload, make_record, make_user, record_data

HOSTILE = [
    "/records?page=abc",
    "/records?page=-1",
    "/records?page=99999999999999999999",
    "/records?year=99999",
    "/records?year=%00",
    "/records?type=<script>alert(1)</script>",
    "/records?taxon=" + "x" * 5000,
    "/records?taxon=%E2%80%AE%00%01",
    "/records?party=zz",
    "/records?region=mars&language=de",
    "/records/" + "r" * 500,
    "/records/%00",
    "/records/..%2F..%2Fetc%2Fpasswd",
    "/files/..%2Fregistry.sqlite",
    "/files/" + "f" * 300,
    "/parties/ZZZ",
    "/parties/%C3%A9%C3%A9",
    "/parties/ZA?page=abc",
    "/parties/ZA?page=0",
    "/?lang=%00",
    "/login?next=%00",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_get_a_clear_answer(client, url):
    with client.get(url) as response:
        assert response.status_code in (200, 400, 404), url
        body = response.get_data(as_text=True)
        assert "Traceback" not in body and "<script>alert" not in body


def test_bad_filters_are_named_and_the_rest_still_applies(client):
    response = client.get("/records?year=abc&type=protocol")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Some filters were not understood" in page and "<li>year</li>" in page
    assert 'value="protocol" selected' in page


def test_unknown_method_and_oversized_login(client):
    assert client.put("/records").status_code == 405
    response = client.post("/login", data={"email": "a" * 10000, "password": "b" * 10000})
    assert response.status_code == 400


def test_an_unexpected_database_error_shows_the_error_page_not_a_bare_500(app):
    @app.get("/test-database-error")
    def database_error():  # type: ignore[no-untyped-def]
        # A second South Africa: the flush fails and leaves the session needing a rollback.
        session.add(Party(iso="ZA", region="africa", name_en="ZA", name_fr="ZA", name_es="ZA"))
        session.flush()

    with app.app_context():
        make_user("reader")
    client = app.test_client()
    login(client, "reader-x@test.example", PASSWORD)
    # The page renders the signed-in user, which the database must be able to load again.
    response = client.get("/test-database-error")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong on our side" in page and "Sign out" in page
    assert "Traceback" not in page and "IntegrityError" not in page
    assert client.get("/").status_code == 200


def test_the_justification_comes_from_the_short_list_in_imports_too(app):
    with app.app_context():
        with pytest.raises(Invalid) as refused:
            import_payload(
                [record_data(confidentiality={"level": "confidential", "justification": "Secret."})]
            )
        assert any("confidentiality.justification" in p for p in refused.value.messages["problems"])
        record = make_record(confidentiality={"level": "confidential", "justification": "personal_data"})
        assert record.confidentiality_justification == "personal_data"


def test_numbers_that_would_overflow_the_database_are_refused_in_imports(app):
    centre = {"facility_type": "zoo", "operator": "Op", "city": "Town", "capacity": 10**20}
    with app.app_context():
        with pytest.raises(Invalid) as refused:
            import_payload([record_data(type="rescue_centre", details=centre, year=2**40)])
        problems = refused.value.messages["problems"]
        assert any("details.capacity: Enter a number from 0 to 1000000." in p for p in problems), problems
        assert any("year: Enter a number from 1950 to 2100." in p for p in problems), problems
        assert session.scalar(select(Record)) is None


_BAD_VALUES = (
    None,
    12345,
    "",
    "x" * 300_000,
    "a\x00b",
    "a\u2028b",
    ["x"] * 1001,
    {"a": 1},
    "nan",
    "1e400",
    10**20,
)


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [m for inner in value.values() for m in _messages(inner)]
    if isinstance(value, list):
        return [m for inner in value for m in _messages(inner)]
    return [str(value)]


def _bad_variants(shape: dict[str, Any]):  # type: ignore[no-untyped-def]
    """``shape`` with one value replaced by a bad one, for every value, nested ones included."""
    for key, current in shape.items():
        for bad in _BAD_VALUES:
            yield {**shape, key: bad}
        if isinstance(current, dict):
            for inner in _bad_variants(current):
                yield {**shape, key: inner}
        elif isinstance(current, list) and current and isinstance(current[0], dict):
            for inner in _bad_variants(current[0]):
                yield {**shape, key: [inner]}


def test_every_message_the_schemas_and_services_give_is_in_the_viewers_language(app):
    """Issue 12: the messages are lazy strings, translated where they are shown: every message a bad
    value of any field draws (marshmallow's own included), and the services' with their values,
    reads differently in French and in Spanish than in English, its values kept."""
    full = {
        **record_data(),
        "translations": [{"language": "fr", "title": "Titre", "summary": ""}],
        "confidentiality": {"level": "public", "rule": "", "justification": "", "disclosure_date": None},
        "files": [{"path": "a.pdf", "title": "", "language": "en", "tier": "public"}],
    }
    shapes = [
        {**full, "type": "rescue_centre", "details": {**centre_details(), "contacts": [{"name": "N"}]}},
        {**full, "type": "network", "details": {"coordinator": "C", "website": None, "members": []}},
        {**full, "type": "action_plan", "details": {"lead_agency": "L", "period_start": 2000}},
        {**full, "type": "agreement", "details": {"agreement_type": "loan", "ownership": "state"}},
    ]
    services = [
        write.ALREADY_SAVED,
        _l("%(n)s is not a file of this record.", n="fabc123"),
        _l("The same file is listed twice."),
        _l("Not in the taxon checklist: %(n)s.", n="Dodo ineptus"),
    ]
    read = {}
    for language in ("en", "fr", "es"):
        # As in a request: marshmallow's messages are translated as the value is refused.
        with app.test_request_context(f"/?lang={language}"):
            refused: list[Any] = [services]
            for shape in shapes:
                for variant in _bad_variants(shape):
                    try:
                        load_record(variant)
                    except ValidationError as exc:
                        refused.append(exc.messages)
            read[language] = [m for messages in refused for m in _messages(messages)]
    assert len(read["en"]) > 100
    untranslated = {
        english
        for english, french, spanish in zip(read["en"], read["fr"], read["es"], strict=True)
        if french == english or spanish == english
    }
    assert not untranslated
    assert "fabc123" in " ".join(read["fr"]) and "Dodo ineptus" in " ".join(read["es"])
    # A bound or value in a message is filled in, in every language.
    bounded = [(e, f) for e, f in zip(read["en"], read["fr"], strict=True) if "500" in e]
    assert bounded and all("500" in f for _e, f in bounded)


def centre_details() -> dict[str, Any]:
    return {"facility_type": "zoo", "operator": "Op", "city": "Town", "latitude": 1.0, "capacity": 1}
