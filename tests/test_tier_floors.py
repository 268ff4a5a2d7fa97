"""A tier the Secretariat set stands, and nothing opens without being listed and audited.

Issue 10, item 3: a Party cannot undo a tier the Secretariat raised, whatever it posts (a stale tab
included), and publishing lists every part more open than the Secretariat last set it. Item 6:
lowering a record lists, on the desk, each part that opens with it, and audits each.
"""

from __future__ import annotations

from html import unescape

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from registry.db import commit, rollback, session
from registry.errors import Invalid
from registry.models import AuditEvent, File, Record
from registry.services.records import review, tiers, write

from .factories import make_record, record_data
from .test_admin import (
    CENTRE_DETAILS,
    _edit,
    _files_dir,
    _form_fields,
    _post,
    _signed_in,
    _status,
    _text,
    _user,
)


def _tier_events() -> list[tuple]:
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "tier_change").order_by(AuditEvent.id)
    )
    return [
        (
            e.file_id,
            e.detail.get("field"),
            e.detail["old"],
            e.detail["new"],
            bool(e.detail.get("opened_with_record")),
        )
        for e in rows
    ]


def test_a_party_cannot_undo_a_field_tier_the_secretariat_raised(app, people, secretariat):
    """The Party's stale tab re-posts the address as public after the Secretariat raised it and returned
    the record: refused by the field, the form offers nothing more open, the public never sees it."""
    party = _signed_in(app, people["party"])
    with app.app_context():
        centre = write.create_record(
            _user(people["party"]),
            record_data(
                type="rescue_centre",
                title="Coastal rescue centre",
                confidentiality={"level": "public", "fields": {"address": "public"}},
                details=CENTRE_DETAILS,
            ),
            [],
            _files_dir(),
        )
        commit()
        record_id = centre.id
    stale = _form_fields(_text(party.get(f"/submit/{record_id}")))
    assert ("confidentiality.fields.address", "public") in stale
    assert _post(party, f"/submit/{record_id}/submit").status_code == 302
    url = f"/admin/records/{record_id}"
    raised = _post(
        secretariat, f"{url}/tier", {"target": "field:address", "tier": "confidential", "reason": "A keeper"}
    )
    assert raised.status_code == 302
    assert (
        _post(secretariat, f"{url}/return", {"comment": "Please add the opening hours."}).status_code == 302
    )
    # The stale tab: every field as it was, the address public again.
    sent = MultiDict(
        [
            *((n, "Coastal rescue centre, open daily" if n == "title" else v) for n, v in stale),
            ("action", "submit"),
        ]
    )
    refused = party.post(f"/submit/{record_id}", data=sent)
    body = unescape(_text(refused))
    assert refused.status_code == 422
    assert (
        "The CITES Secretariat has set Address to Confidential. Only the Secretariat can make it more open."
        in body
    )
    assert 'value="Coastal rescue centre, open daily"' in body
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.status, record.field_tiers["address"], record.title) == (
            "returned",
            "confidential",
            "Coastal rescue centre",
        )
    # A fresh form offers the Party nothing more open than the Secretariat's tier, and says why.
    fresh = _text(party.get(f"/submit/{record_id}"))
    select_html = fresh[
        fresh.index('id="confidentiality-fields-address"') : fresh.index(
            "</select>", fresh.index('id="confidentiality-fields-address"')
        )
    ]
    assert 'value="public"' not in select_html and 'value="registered"' not in select_html
    assert "The CITES Secretariat set this to Confidential." in unescape(fresh)
    resent = MultiDict([*_form_fields(fresh), ("action", "submit")])
    assert party.post(f"/submit/{record_id}", data=resent).status_code == 302
    published = _post(secretariat, f"{url}/publish")
    assert published.status_code == 302
    page = _text(app.test_client().get(f"/records/{record_id}"))
    assert "Coastal rescue centre" in page and "3 Heron Lane" not in page


def test_a_party_cannot_undo_a_tier_the_secretariat_raised_in_a_revision(app, people):
    """On a published record, the Secretariat's raise of the record and of a file stands against the
    revision the Party saves afterwards, by the service itself (not only the form)."""
    with app.app_context():
        record = make_record(
            title="Seizure protocol",
            files=[{"path": "files/annex.pdf", "language": "en", "tier": "public", "text": "Annex"}],
        )
        file_id = record.files[0].id
        desk = _user(people["secretariat"])
        tiers.change_tier(desk, record, "registered", "Names officers")
        tiers.change_tier(desk, session.get(File, file_id), "confidential", "Names a keeper")
        commit()
        party = _user(people["party"])
        with pytest.raises(Invalid) as refused:
            _edit(party, record, {file_id: "public"}, confidentiality={"level": "public"})
        assert "level" in refused.value.messages["confidentiality"] and refused.value.messages["files"]
        rollback()
        record = session.get(Record, record.id)
        assert record.revision is None and (record.tier, record.files[0].tier) == (
            "registered",
            "confidential",
        )
        # What is at or above the Secretariat's tiers is the Party's to state.
        _edit(party, record, {file_id: "confidential"}, confidentiality={"level": "confidential"})
        review.submit(party, record)
        commit()
        assert tiers.publish_lowers(record) == []


def test_publishing_lists_every_part_more_open_than_the_secretariat_set_it(app, people, secretariat):
    """A part already stated below the Secretariat's tier (a submission saved before the tier stood)
    is listed on the review page as such, and published only with a reason, which the trail keeps."""
    with app.app_context():
        party = _user(people["party"])
        record = write.create_record(party, record_data(title="Holding pens"), [], _files_dir())
        review.submit(party, record)
        # As a submission saved under the old rules would be: the Secretariat's tier, the Party's lower one.
        record.tier_floors = {"record": "registered"}
        commit()
        record_id = record.id
    review_page = _text(secretariat.get(f"/admin/records/{record_id}"))
    start = review_page.index('id="lowers"')
    warning = review_page[start : review_page.index("</div>", start)]
    assert "The whole record" in warning and "the tier the Secretariat set" in warning
    assert _post(secretariat, f"/admin/records/{record_id}/publish", {"reason": ""}).status_code == 422
    assert app.test_client().get(f"/records/{record_id}").status_code == 404
    done = _post(secretariat, f"/admin/records/{record_id}/publish", {"reason": "The Party explained it"})
    assert done.status_code == 302
    with app.app_context():
        assert _tier_events() == [(None, None, "registered", "public", False)]
        assert session.get(Record, record_id).tier_floors == {"record": "public"}


def test_lowering_a_record_lists_and_audits_each_part_that_opens_with_it(app, people, secretariat):
    """Issue 10, item 6: a confidential record holds a public file and a public address back; the
    desk lists both under the lowering, and lowering the record audits each of them."""
    with app.app_context():
        record = make_record(
            type="rescue_centre",
            title="Inland rescue centre",
            confidentiality={
                "level": "confidential",
                "fields": {"address": "public", "capacity": "registered"},
            },
            details=CENTRE_DETAILS,
            files=[
                {"path": "files/leaflet.pdf", "language": "en", "tier": "public", "text": "Leaflet"},
                {"path": "files/pens.pdf", "language": "en", "tier": "confidential", "text": "Pens"},
            ],
        )
        record_id = record.id
        leaflet, pens = (f.id for f in record.files)
    review = unescape(_text(secretariat.get(f"/admin/records/{record_id}")))
    record_form = review[
        review.index('value="record"') : review.index("</form>", review.index('value="record"'))
    ]
    opens = record_form[record_form.index("open with it") :]
    at_public = opens[opens.index("At Public:") : opens.index("</li>", opens.index("At Public:"))]
    assert "Document: leaflet.pdf" in at_public and "Field: Address" in at_public
    assert "Field: Capacity" in at_public and "pens.pdf" not in at_public
    at_registered = opens[
        opens.index("At Registered users:") : opens.index("</li>", opens.index("At Registered users:"))
    ]
    assert "leaflet.pdf" in at_registered and "Capacity" in at_registered
    lowered = _post(
        secretariat,
        f"/admin/records/{record_id}/tier",
        {"target": "record", "tier": "public", "reason": "Adopted"},
    )
    assert lowered.status_code == 302
    with app.app_context():
        assert _tier_events() == [
            (None, None, "confidential", "public", False),
            (None, "address", "confidential", "public", True),
            (None, "capacity", "confidential", "registered", True),
            (leaflet, None, "confidential", "public", True),
        ]
        assert session.get(Record, record_id).tier_floors == {"record": "public"}
    anonymous = app.test_client()
    assert _status(anonymous, f"/files/{leaflet}") == 200 and _status(anonymous, f"/files/{pens}") == 404
