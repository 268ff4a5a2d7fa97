"""The main journey in a real browser, from a Party's form to the public page and the audit trail.

A French Party writes a protocol in French with a public PDF and a confidential contract, the
Secretariat returns it with a comment, the Party corrects and resubmits it, the Secretariat
publishes it. The public then sees the protocol and its PDF but no trace of the contract, which
an enforcement officer can download, and that download is in the Secretariat's audit trail.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from registry.db import session
from registry.models import AuditEvent, File, Record
from seed.documents import write_pdf

from .browser import assert_clean, open_page, sign_in, watch
from .factories import make_user

TITLE = "Protocole de prise en charge des perroquets gris saisis"
SUMMARY = "Comment accueillir, identifier et soigner les perroquets gris confisqués à la frontière."
AGENCY = "Direction générale des douanes et droits indirects"
PUBLIC_NAME = "protocole-perroquets.pdf"
PUBLIC_TITLE = "Protocole, version publique"
# Unique words: none of them may reach a viewer who may not see the contract.
CONTRACT_NAME = "contrat-zorblax.pdf"
CONTRACT_TITLE = "Contrat de placement quuxvelt"
CONTRACT_WORD = "frobnicatrix"
COMMENT = "Merci d'indiquer la date d'adoption du protocole."
ADOPTED = "2024-03-15"


def submit_in_french(page: Page, live_server: str, public_pdf: Path, contract_pdf: Path) -> None:
    """The Party fills in a new protocol in French, attaches both PDFs and submits it."""
    sign_in(page, "party-fr@test.example")
    page.get_by_role("link", name="My submissions").click()
    expect(page).to_have_url(f"{live_server}/submit/")
    page.get_by_role("link", name="Protocol", exact=True).click()
    expect(page).to_have_url(f"{live_server}/submit/new/protocol")

    page.locator("#title").fill(TITLE)
    page.locator("#language").select_option("fr")
    page.locator("#summary").fill(SUMMARY)
    page.locator('[name="details.responsible_agency"]').fill(AGENCY)
    page.locator('input[name="details.stages"][value="seizure"]').check()

    # The picker's script finds the taxon by its French common name and adds its scientific name.
    page.locator("#taxon_query").fill("perroquet gris")
    match = page.locator("#taxon-results li").filter(has_text="Psittacus erithacus")
    match.get_by_role("button", name="Add").click()
    expect(page.locator("#taxa")).to_have_value(re.compile(r"^Psittacus erithacus$"))

    page.locator("#upload-0").set_input_files(public_pdf)
    page.locator("#upload-0-title").fill(PUBLIC_TITLE)
    page.locator("#upload-0-language").select_option("fr")
    page.locator("#upload-0-tier").select_option("public")
    page.locator("#upload-1").set_input_files(contract_pdf)
    page.locator("#upload-1-title").fill(CONTRACT_TITLE)
    page.locator("#upload-1-language").select_option("fr")
    page.locator("#upload-1-tier").select_option("confidential")
    page.locator("#confidentiality-justification").select_option("commercial_terms")

    page.locator("button[name=action][value=submit]").click()
    expect(page).to_have_url(f"{live_server}/submit/")
    expect(page.get_by_text("Submitted to the CITES Secretariat for review.")).to_be_visible()
    expect(page.locator("#work-heading + table")).to_contain_text(TITLE)


def open_from_queue(page: Page, record_id: str) -> None:
    """The Secretariat finds the submission in its review queue and opens it."""
    page.goto("/admin/")
    page.locator("table.data").get_by_role("link", name=TITLE).click()
    expect(page).to_have_url(re.compile(f"/admin/records/{record_id}$"))
    expect(page.locator("h1")).to_have_text(TITLE)


def return_with_comment(page: Page, record_id: str) -> None:
    """The Secretariat reviews both documents and returns the submission with a comment."""
    open_from_queue(page, record_id)
    files = page.locator("#files-h + ul.files")
    expect(files).to_contain_text(PUBLIC_TITLE)
    expect(files).to_contain_text(CONTRACT_TITLE)
    page.locator("#return-comment").fill(COMMENT)
    page.get_by_role("button", name="Return to the Party").click()
    expect(page.get_by_text(f"Returned to the Party: {TITLE}")).to_be_visible()


def correct_and_resubmit(page: Page, live_server: str) -> None:
    """The Party reads the comment, adds the date asked for and submits again."""
    page.goto("/submit/")
    expect(page.locator("p.comment")).to_contain_text(COMMENT)
    page.get_by_role("link", name=TITLE).click()
    expect(page.locator(".notice[role=note]")).to_contain_text(COMMENT)
    # Both documents are still attached, with their tiers.
    expect(page.locator("table.files-table tbody tr")).to_have_count(2)
    page.locator("#date").fill(ADOPTED)
    page.locator("button[name=action][value=submit]").click()
    expect(page).to_have_url(f"{live_server}/submit/")
    expect(page.get_by_text("Submitted to the CITES Secretariat for review.")).to_be_visible()


def publish(page: Page, record_id: str) -> None:
    """The Secretariat sees the corrected submission and its comment, and publishes it."""
    open_from_queue(page, record_id)
    expect(page.locator("ol.comments")).to_contain_text(COMMENT)
    expect(page.locator("table.diff")).to_contain_text(ADOPTED)
    page.locator("form[action$='/publish'] button[type=submit]").click()
    expect(page.get_by_text(f"Published: {TITLE}")).to_be_visible()


def read_as_the_public(page: Page, record_id: str, contract_id: str, public_pdf: Path) -> None:
    """Anyone sees the protocol and downloads its PDF; the contract is nowhere, and answers 404."""
    page.goto(f"/records/{record_id}")
    expect(page.locator("h1")).to_have_text(TITLE)
    expect(page.locator(".summary")).to_have_text(SUMMARY)
    expect(page.locator("dl.facts")).to_contain_text(AGENCY)
    expect(page.locator("ul.taxa")).to_contain_text("Psittacus erithacus")

    links = page.locator("ul.files a")
    expect(links).to_have_count(1)
    with page.expect_download() as download:
        links.get_by_text(PUBLIC_TITLE).click()
    assert download.value.suggested_filename == PUBLIC_NAME
    assert Path(download.value.path()).read_bytes() == public_pdf.read_bytes()

    html = page.content()
    for trace in (CONTRACT_NAME, CONTRACT_TITLE, CONTRACT_WORD, contract_id):
        assert trace not in html
    assert page.request.get(f"/files/{contract_id}").status == 404

    # Nor does the search know the contract's words, while it does find the public PDF's.
    page.goto("/search?q=quarantaine")
    expect(page.locator(".hits")).to_contain_text(TITLE)
    page.goto(f"/search?q={CONTRACT_WORD}")
    expect(page.locator(".results .count")).to_have_text("0 results")


def download_contract(page: Page, record_id: str, contract_pdf: Path) -> None:
    """An enforcement officer sees the contract on the record page and downloads it, byte for byte."""
    sign_in(page, "enforcement-x@test.example")
    page.goto(f"/records/{record_id}")
    with page.expect_download() as download:
        page.locator("ul.files a").get_by_text(CONTRACT_TITLE).click()
    # A download fires no "response" event: the bytes are the proof that the server sent the file.
    assert download.value.failure() is None
    assert download.value.suggested_filename == CONTRACT_NAME
    assert Path(download.value.path()).read_bytes() == contract_pdf.read_bytes()


def see_download_in_trail(page: Page, record_id: str, contract_id: str) -> None:
    """The Secretariat's audit trail shows the officer's download of the contract."""
    page.goto(f"/admin/audit?action=download&record={record_id}")
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Downloaded")
    expect(rows).to_contain_text("enforcement-x@test.example")
    expect(rows).to_contain_text(contract_id)


def test_protocol_from_submission_to_publication(
    browser: Browser, live_app: Flask, live_server: str, tmp_path: Path
) -> None:
    with live_app.app_context():
        make_user("party", "FR")
        make_user("secretariat")
        make_user("enforcement")
    public_pdf, contract_pdf = tmp_path / PUBLIC_NAME, tmp_path / CONTRACT_NAME
    write_pdf(public_pdf, PUBLIC_TITLE, "Accueil des perroquets saisis : quarantaine de trente jours.")
    write_pdf(contract_pdf, CONTRACT_TITLE, f"Conditions du placement. {CONTRACT_WORD}.")

    with open_page(browser, live_server) as party, open_page(browser, live_server) as desk:
        party_traffic, desk_traffic = watch(party), watch(desk)
        submit_in_french(party, live_server, public_pdf, contract_pdf)
        with live_app.app_context():
            record = session.scalars(select(Record).where(Record.title == TITLE)).one()
            record_id = record.id
            contract_id = next(f.id for f in record.files if f.original_name == CONTRACT_NAME)
            assert {f.original_name: f.tier for f in record.files} == {
                PUBLIC_NAME: "public",
                CONTRACT_NAME: "confidential",
            }

        sign_in(desk, "secretariat-x@test.example")
        return_with_comment(desk, record_id)
        correct_and_resubmit(party, live_server)
        publish(desk, record_id)
        assert_clean(party_traffic, live_server)

        with open_page(browser, live_server) as visitor:
            traffic = watch(visitor)
            read_as_the_public(visitor, record_id, contract_id, public_pdf)
            assert_clean(traffic, live_server)

        with open_page(browser, live_server) as officer:
            traffic = watch(officer)
            download_contract(officer, record_id, contract_pdf)
            assert_clean(traffic, live_server)

        see_download_in_trail(desk, record_id, contract_id)
        assert_clean(desk_traffic, live_server)

    with live_app.app_context():
        downloads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "download", AuditEvent.record_id == record_id)
        ).all()
        assert [(e.actor, e.actor_role, e.file_id) for e in downloads] == [
            ("enforcement-x@test.example", "enforcement", contract_id)
        ]
        assert session.get(File, contract_id).record_id == record_id
