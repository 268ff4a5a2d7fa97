"""Search: multilingual matching, one index per tier that cannot leak, the outbox, rebuilds and crashes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select
from whoosh.query import Term
from whoosh.writing import PostingPool

from registry import policy, search
from registry.db import commit, session
from registry.models import File, Record
from registry.search.documents import document_for
from registry.services.records import tiers
from registry.services.search import SearchParams, run_search

from .canary import CONF, DRAFT, GONE, REG, WORDS_HIDDEN_FROM, load_canaries
from .conftest import BACKENDS, dispose, fresh_database, load_reference, login, make_app
from .factories import PASSWORD, import_payload, make_record, make_user, record_data

ROOT = Path(__file__).resolve().parent.parent
REASON = "It names a private keeper."


def _ids(app, q, viewer=None, per_page=500, **filters):
    with app.test_request_context():
        results = run_search(viewer, SearchParams(q=q, per_page=per_page, **filters))
        return [hit.record.id for hit in results.hits], results


@pytest.fixture(scope="module", params=BACKENDS)
def searchable(request, templates, tmp_path_factory):
    """A registry with the demo data and the canaries, searched read-only by several tests."""
    import seed

    folder = tmp_path_factory.mktemp("search")
    app = make_app(fresh_database(request, request.param, templates, folder), folder / "home")
    with app.app_context():
        load_reference()
        commit()
        import_payload(seed.read_json("demo.json")["records"])
        load_canaries()
        make_user("reader")
        make_user("party", "FR")
        make_user("enforcement")
    yield app
    dispose(app)


def _user(email):
    from registry.models import User

    return session.scalar(select(User).where(User.email == email))


@pytest.mark.parametrize(
    ("query", "language", "word"),
    [
        ("tortue", "fr", r"tortue"),
        ("decomiso", "es", r"decomis"),
        ("décomiso", "es", r"decomis"),
        ('"rescue centre"', "en", r"rescue[- ]centres?"),
        ("protege", None, r"prot[ée]g[ée]"),
        ("prote\u0301ge\u0301", None, r"prot[ée]g[ée]"),
    ],
)
def test_multilingual_matching(searchable, query, language, word):
    ids, _ = _ids(searchable, query, **({"language": language} if language else {}))
    assert ids, query
    with searchable.app_context():
        records = [session.get(Record, record_id) for record_id in ids]
        bodies = [_fold(document_for(r, "public")["body"].lower()) for r in records]
        assert all(re.search(_fold(word), body) for body in bodies), query
        own_words = [_fold(f"{r.title} {r.summary}".lower()) for r in records]
        assert any(re.search(_fold(word), text) for text in own_words), query


def _fold(text):
    from registry.search.analysis import fold

    return fold(text)


def test_phrase_pairs_made_from_the_body_equal_pairs_analysed_afresh():
    """The phrase field reuses the terms of the body just analysed; any other text is analysed."""
    from registry.search import analysis

    text = "Les tortues saisies au centre de sauvetage; the rescue centres, prote\u0301ge\u0301s. " * 2
    afresh = analysis.pairs(text)
    assert [t.text for t in analysis.pair_analyzer()(text)] == afresh
    assert len([t.text for t in analysis.text_analyzer()(text)]) == len(afresh) + 1
    assert [t.text for t in analysis.pair_analyzer()(text)] == afresh
    assert [t.text for t in analysis.pair_analyzer()("tortues saisies")] == ["tortu saisi"]
    # A document's parts are apart: no pair spans two of them, whichever way the pairs are made.
    parted = analysis.PART.join(["The rescue centre", "Kenya parrots"])
    assert [t.text for t in analysis.text_analyzer()(parted)] == ["rescu", "centr", "keny", "parrot"]
    assert [t.text for t in analysis.pair_analyzer()(parted)] == ["rescu centr", "keny parrot"]
    assert [t.text for t in analysis.pair_analyzer()("".join(list(parted)))] == analysis.pairs(parted)


def test_plural_and_phrase(searchable):
    singular, _ = _ids(searchable, "rescue centre")
    plural, _ = _ids(searchable, "rescue centres")
    phrase, _ = _ids(searchable, '"rescue centres"')
    assert singular and set(singular) == set(plural)
    assert set(phrase) <= set(singular) and phrase


def test_empty_query_lists_everything_visible(searchable):
    ids, results = _ids(searchable, "")
    with searchable.app_context():
        public = set(session.scalars(policy.published_at(select(Record.id), "public")))
    assert set(ids) == public and results.total == len(public)


def test_prefix_needs_three_letters_and_is_capped(searchable):
    from registry.search import query as query_module

    short, _ = _ids(searchable, "pr*")
    assert short == []
    ids, _ = _ids(searchable, "quarant*")
    assert ids
    with searchable.app_context():
        with search.indexes().searcher("public") as searcher:
            parsed = query_module.parse("a*", searcher.reader())
            assert "Every" not in repr(parsed.query)
            parsed = query_module.parse("p" * 3 + "*", searcher.reader())
            assert len(list(parsed.query.leaves())) <= query_module.MAX_PREFIX_TERMS


@pytest.mark.parametrize("role", ["anonymous", "reader", "party_other"])
def test_canaries_are_never_found(searchable, role):
    markers = WORDS_HIDDEN_FROM[role]
    email = {"reader": "reader-x@test.example", "party_other": "party-fr@test.example"}.get(role)
    client = searchable.test_client()
    if email:
        assert login(client, email, PASSWORD).status_code == 302
    for marker in markers:
        for q in (marker, marker.lower(), f'"{marker}"', f"{marker[:-1]}*"):
            page = client.get("/search", query_string={"q": q}).get_data(as_text=True)
            assert "0 results" in page, (
                role,
                q,
                re.findall(r"class=\"count\">[^<]*|<h3>.*?</h3>", page, re.S)[:4],
            )
        for q in (marker[:-1] + "x", f"{marker[:6]}*", f"fee OR {marker}", "contract", "address"):
            page = client.get("/search", query_string={"q": q}).get_data(as_text=True)
            assert marker.lower() not in _without_echo(page).lower(), (role, q)
    # No count and no facet of any kind feels them either, nor a suggestion offers them.
    with searchable.test_request_context():
        viewer = _user(email) if email else None
        for marker in markers:
            for q in (marker, f"{marker[:-1]}*", f"{marker[:-1]}x"):
                _, results = _ids(searchable, q, viewer)
                assert results.total == 0 and not any(results.facets.values()), (role, q)
                assert marker.lower() not in (results.suggestion or "").lower(), (role, q)


def _without_echo(page):
    """The page without the places that repeat the user's own query (title, links, the search box)."""
    page = re.sub(r"<title>.*?</title>", "", page, flags=re.S)
    return re.sub(r'(href|value)="[^"]*"', "", page)


def test_facet_counts_do_not_move_when_hidden_records_are_added(app):
    with app.app_context():
        make_record(title="Open parrot protocol")
    _, before = _ids(app, "parrot")
    with app.app_context():
        make_record(title="Hidden parrot protocol", confidentiality={"level": "confidential"})
        make_record(title="Registered parrot protocol", confidentiality={"level": "registered"})
        make_record(title="Draft parrot protocol", status="draft")
    _, after = _ids(app, "parrot")
    assert after.total == before.total == 1
    assert after.facets == before.facets


def test_public_index_never_held_confidential_text(searchable):
    with searchable.app_context():
        # Words of an old title, and of a withdrawn record, leave even the officers' index.
        hidden = {
            "public": (CONF, REG, DRAFT, GONE),
            "registered": (CONF, DRAFT, GONE),
            "confidential": (DRAFT, GONE),
        }
        for tier, markers in hidden.items():
            with search.indexes().index(tier).searcher() as searcher:
                reader = searcher.reader()
                for fieldname in ("body", "pairs", "words"):
                    for term in reader.lexicon(fieldname):
                        text = term.decode() if isinstance(term, bytes) else term
                        for marker in markers:
                            assert marker.lower() not in text, (tier, fieldname, text)
                stored = repr(list(reader.all_stored_fields())).lower()
                for marker in markers:
                    assert marker.lower() not in stored
        with search.indexes().index("confidential").searcher() as searcher:
            assert any(CONF.lower() in t.decode() for t in searcher.reader().lexicon("body"))


def test_query_syntax_cannot_widen_visibility(searchable):
    with searchable.app_context():
        public = set(session.scalars(policy.published_at(select(Record.id), "public")))
    for q in (
        "fee OR tier:confidential",
        "tier:confidential",
        "id:*",
        "* OR *",
        "status:draft",
        "title:agreement",
    ):
        ids, _ = _ids(searchable, q)
        assert set(ids) <= public, q


def test_suggestion_comes_from_the_viewers_tier_only(searchable):
    _, results = _ids(searchable, "tortoize")
    assert results.suggestion and "tortois" in results.suggestion
    for typo in ("canaryconx", "canaryreq"):
        _, results = _ids(searchable, typo)
        assert results.suggestion is None or "canary" not in results.suggestion.lower()


def test_snippets_are_escaped_and_short(app):
    with app.app_context():
        make_record(title="Markup test", summary="Seized <script>alert(1)</script> parrots " + "word " * 200)
    client = app.test_client()
    page = client.get("/search", query_string={"q": "parrots markup"}).get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;" in page and "<mark>parrots</mark>" in page
    snippet = re.search(r'<p class="snippet"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert len(snippet.split()) < 60


def test_reclassification_disappears_in_the_same_request_cycle(app):
    with app.app_context():
        record = make_record(
            title="Pangolin reclassification probe",
            files=[{"path": "files/p.pdf", "language": "en", "tier": "public", "text": "pangolin"}],
        )
        record_id = record.id
        secretariat = make_user("secretariat")
    assert _ids(app, "reclassification probe")[0] == [record_id]
    client = app.test_client()
    with app.test_request_context():
        tiers.change_tier(_user(secretariat.email), session.get(Record, record_id), "confidential", REASON)
        commit()
    assert _ids(app, "reclassification probe")[0] == []
    assert client.get(f"/records/{record_id}").status_code == 404
    assert "Pangolin reclassification" not in client.get("/search?q=reclassification").get_data(as_text=True)


def test_stale_refresh_trap_is_avoided(app):
    """Whoosh's Searcher.refresh() can keep deleted documents; ours reopens when not up to date."""
    with app.app_context():
        record = make_record(title="Tortoise trap probe")
        secretariat = make_user("secretariat")
        with search.indexes().searcher("public") as first:
            assert first.up_to_date()
            tiers.change_tier(_user(secretariat.email), session.get(Record, record.id), "registered", REASON)
            commit()
            assert not first.up_to_date()
        with search.indexes().searcher("public") as second:
            assert second is not first and second.up_to_date()
        assert _ids(app, "trap probe")[0] == []


def test_counts_exclude_filtered_documents(app):
    """With ``terms=True`` and a filter Whoosh counts hidden documents in len(results); our totals do not."""
    with app.app_context():
        make_record(title="Counting probe one", type="protocol")
        make_record(title="Counting probe two", type="sop", details={"agency": "Police"})
    _, all_results = _ids(app, "counting probe")
    ids, filtered = _ids(app, "counting probe", type="sop")
    assert all_results.total == 2 and filtered.total == len(ids) == 1
    assert filtered.facets["type"] == {"sop": 1}


def test_or_and_prefix_count_every_match_beyond_the_first_page(app):
    """Whoosh may swap a union for an intersection once the top page is full (score pruning): the
    ranking survives that, the counts would not. Many more matches than a page, of unequal scores."""
    with app.app_context():
        import_payload(
            [
                record_data(title=f"Union probe {'lorikeet ' * (1 + i % 4)}", summary=f"Entry {i}.")
                for i in range(30)
            ]
            + [
                record_data(title=f"Union probe {'lorisidae ' * (1 + i % 3)}", summary=f"Other {i}.")
                for i in range(25)
            ]
            + [record_data(title="Union probe lorikeet lorisidae", summary="Both.")]
        )
    for query in ("lorikeet OR lorisidae", "lori*"):
        ids, results = _ids(app, query, per_page=5)
        assert results.total == 56, query
        assert len(ids) == 5
        assert sum(results.facets["type"].values()) == 56
    assert _ids(app, "lorikeet")[1].total == 31


def test_block_matching_scores_and_counts_as_whoosh_does(app):
    """The block-at-a-time evaluation finds the documents Whoosh's matchers find, with their scores,
    in segments with deletions too (records changed after indexing)."""
    from registry.search import matching
    from registry.search.query import parse

    words = ["lorikeet", "pangolin", "tortoise", "quarantine", "customs"]
    with app.app_context():
        records = [
            make_record(
                title=f"Matching probe {words[i % 5]} {words[(i * 3) % 5]}",
                summary=" ".join(words[: 1 + i % 5] * (1 + i % 3)) + f" entry {i}",
            )
            for i in range(24)
        ]
        for record in records[::5]:
            record.title += " rescue centre"
            search.enqueue(record.id)
        commit()
        with search.indexes().searcher("public") as searcher:
            assert any(leaf.reader().has_deletions() for leaf, _ in searcher.leaf_searchers())
            queries = [
                "lorikeet",
                "pangolin tortoise",
                "lorikeet OR customs",
                "quarantine -pangolin",
                '"rescue centre"',
                "tort*",
                "",
                "nothingmatches",
            ]
            for text in queries:
                query = parse(text, searcher.reader()).query
                ours = {}
                for leaf, offset in searcher.leaf_searchers():
                    for docnum, score in matching.scores(searcher, leaf.reader(), query).items():
                        ours[searcher.stored_fields(offset + docnum)["id"]] = score
                theirs = {hit["id"]: hit.score for hit in searcher.search(query, limit=None)}
                assert ours.keys() == theirs.keys(), text
                if text:
                    assert all(abs(ours[k] - theirs[k]) < 1e-4 * max(1.0, theirs[k]) for k in ours), text


def test_time_limit_flags_partial_results(searchable, monkeypatch):
    from registry.services import search as search_service

    monkeypatch.setattr(search_service, "TIME_LIMIT_S", -1.0)
    _, results = _ids(searchable, "parrot")
    assert results.partial
    page = searchable.test_client().get("/search?q=parrot").get_data(as_text=True)
    assert "may be incomplete" in page


def test_rebuild_equals_incremental(app, runner):
    with app.app_context():
        secretariat = _user(make_user("secretariat").email)
        records = [make_record(title=f"Scripted change {i}", summary=f"parrot number {i}") for i in range(5)]
        centre = make_record(
            type="rescue_centre",
            title="Scripted centre",
            confidentiality={"level": "public", "fields": {"address": "public"}},
            details={"facility_type": "zoo", "operator": "Op", "city": "Town", "address": "1 Open Road"},
        )
        tiers.change_tier(secretariat, records[0], "confidential", REASON)
        tiers.change_tier(secretariat, records[1], "registered", REASON)
        tiers.change_tier(secretariat, centre, "registered", REASON, field="address")
        records[3].title = "Scripted change renamed"
        search.enqueue(records[3].id)
        records[4].status = "withdrawn"
        search.enqueue(records[4].id)
        commit()
        incremental = _snapshot()
        search.indexes().rebuild(session)
        rebuilt = _snapshot()
    assert incremental == rebuilt
    result = runner.invoke(args=["index-status"])
    assert result.exit_code == 0 and "All indexes match" in result.output


# Writing an index does not depend on the database: SQLite only.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_rebuild_writes_the_same_index_in_workers_and_when_it_spills_to_disk(app, monkeypatch):
    from registry.search import rebuild

    with app.app_context():
        # Enough distinct words (with their pairs) that a megabyte of postings does not hold them.
        words = ["".join(chr(97 + (n // 26**k) % 26) for k in range(3)) for n in range(1500)]
        for i in range(12):
            make_record(
                title=f"Spill check {i}",
                summary="tortues saisies " + " ".join(words[i * 100 : i * 100 + 400]),
            )
        make_record(
            title="Spill check hidden", summary="canaryspill " * 20, confidentiality={"level": "confidential"}
        )
        commit()
        monkeypatch.setattr(rebuild, "PARALLEL_REBUILD_ABOVE", 10**9)
        search.indexes().rebuild(session)
        roomy = _terms()
        # One megabyte: Whoosh sorts the postings into runs on disk and merges them at commit.
        monkeypatch.setattr(search.indexes(), "build_memory_mb", 1)
        runs = []
        save = PostingPool.save
        monkeypatch.setattr(PostingPool, "save", lambda pool: (runs.append(1), save(pool)))
        search.indexes().rebuild(session)
        spilled = _terms()
        assert runs, "the small memory limit did not make the writers spill"
        # The same, written by one worker process per tier (python -O), spilling too.
        monkeypatch.setattr(rebuild, "PARALLEL_REBUILD_ABOVE", 0)
        search.indexes().rebuild(session)
        in_workers = _terms()
    assert roomy == spilled == in_workers
    assert ("body", "canaryspill") not in {(f, t) for f, t, _ in roomy["public"]}
    assert ("body", "canaryspill") in {(f, t) for f, t, _ in roomy["confidential"]}
    assert ("body", "tortu") in {(f, t) for f, t, _ in roomy["public"]}


def _terms():
    out = {}
    for tier in ("public", "registered", "confidential"):
        with search.indexes().index(tier).searcher() as searcher:
            reader = searcher.reader()
            out[tier] = sorted(
                (field, text.decode() if isinstance(text, bytes) else text, reader.doc_frequency(field, text))
                for field, text in reader.all_terms()
            )
    return out


def _snapshot():
    out = {}
    for tier in ("public", "registered", "confidential"):
        with search.indexes().index(tier).searcher() as searcher:
            out[tier] = sorted((f["id"], f["digest"]) for f in searcher.all_stored_fields())
    return out


def test_index_status_reports_problems(app, runner):
    with app.app_context():
        kept = make_record(title="Status probe kept")
        gone = make_record(title="Status probe gone")
        writer = search.indexes().index("public").writer()
        writer.delete_by_term("id", gone.id)
        writer.add_document(
            id="rzzzzzzzzzzzz",
            body="ghost",
            pairs="",
            words="",
            facets=None,
            sort="",
            digest="x",
        )
        writer.update_document(
            id=kept.id, body="stale", pairs="", words="", facets=None, sort="", digest="old"
        )
        writer.commit()
    result = runner.invoke(args=["index-status"])
    assert result.exit_code == 1
    assert f"public: 1 missing: {gone.id}" in result.output
    assert "public: 1 orphaned: rzzzzzzzzzzzz" in result.output
    assert f"public: 1 stale: {kept.id}" in result.output
    assert runner.invoke(args=["reindex"]).exit_code == 0
    assert runner.invoke(args=["index-status"]).exit_code == 0


def test_another_process_catches_up_from_the_outbox(app, tmp_path):
    """Two nodes on one database, each with its own indexes: a change made on one is found on the other."""
    other = make_app(app.config["DATABASE_URL"], tmp_path / "other-node")
    with other.app_context():
        assert _ids(other, "outbox probe")[0] == []
    with app.app_context():
        record = make_record(title="Outbox probe from node one")
    assert _ids(other, "outbox probe")[0] == [record.id]
    dispose(other)


def _commit_without_applying():
    """Commit, leaving the index jobs to others (as when another worker of the node made the change)."""
    session.commit()
    session.info.pop("after_commit", None)
    session.info.pop("index_jobs", None)


def test_a_search_never_does_another_appliers_work(app):
    """While another process of the node applies jobs, a search answers from the index as it is."""
    from registry.search.index import _applier_lock

    with app.app_context():
        record = make_record(title="Applier probe")
        record.title = "Applier probe renamed quokka"
        search.enqueue(record.id)
        _commit_without_applying()
        folder = search.indexes().root
    with _applier_lock(folder / "applier.lock", 0) as held:
        assert held
        assert _ids(app, "quokka")[0] == []
    assert _ids(app, "quokka")[0] == [record.id]


def test_a_search_waits_for_the_applier_when_text_leaves_a_tier(app):
    """A pending tier raise: the search waits for the node's applier rather than count the record."""
    import threading

    from registry.search.index import _applier_lock

    with app.app_context():
        record = make_record(title="Wombat raise probe")
        secretariat = make_user("secretariat")
        folder = search.indexes().root
    holding, release = threading.Event(), threading.Event()

    def applier():  # another worker of the node, busy applying jobs of its own
        with _applier_lock(folder / "applier.lock", 0):
            holding.set()
            release.wait(5)

    other = threading.Thread(target=applier)
    other.start()
    holding.wait(5)
    try:
        with app.app_context():
            officer = _user(secretariat.email)
            tiers.change_tier(officer, session.get(Record, record.id), "confidential", REASON)
            _commit_without_applying()
        threading.Timer(0.3, release.set).start()
        ids, results = _ids(app, "wombat")
        assert ids == [] and results.total == 0 and sum(results.facets["type"].values()) == 0
    finally:
        release.set()
        other.join()


def test_neither_a_commit_nor_a_search_applies_index_jobs_itself(app, monkeypatch):
    """Issue 12: with the applier (as in production), the commit wakes the node's applier thread and
    returns, and a search waits for that thread rather than write the index: every application of
    the outbox happens in the applier, none in the thread that committed or searched."""
    import threading
    import time

    from registry.search import index as tier_index

    app.config["INDEX_APPLY"] = "applier"
    appliers = []
    catch_up = tier_index.TierIndexes.catch_up

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        appliers.append(threading.current_thread().name)
        return catch_up(self, *args, **kwargs)

    monkeypatch.setattr(tier_index.TierIndexes, "catch_up", spy)
    # Made in a request, as a form makes it (a command applies its own jobs).
    with app.test_request_context("/"):
        record = make_record(title="Applier thread probe numbat")
    deadline = time.monotonic() + 20
    while _ids(app, "numbat")[0] != [record.id] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ids(app, "numbat")[0] == [record.id]
    with app.app_context():
        withdrawn = session.get(Record, record.id)
        withdrawn.title = "Applier thread probe renamed"
        search.enqueue(record.id)
        session.commit()
    # The search waits for the applier: the old word is gone from its answer at once.
    assert _ids(app, "numbat")[0] == []
    assert appliers and set(appliers) == {"index-applier"}


def test_a_searcher_outlives_a_merge_that_deletes_its_segment_files(app):
    """Another worker's merge deletes the files of the segments a searcher holds: still readable."""
    from whoosh import index as whoosh_index

    with app.app_context():
        ids = [make_record(title=f"Merge probe {i}").id for i in range(3)]
        with search.indexes().searcher("public") as searcher:
            folder = search.indexes().folder("public")
            # Another process of the node: one merge of every segment, which deletes the old files.
            other = whoosh_index.open_dir(str(folder))
            other.writer(compound=False).commit(optimize=True)
            other.close()
            assert not searcher.up_to_date()
            stored = {searcher.stored_fields(docnum)["id"] for docnum in range(searcher.doc_count_all())}
            assert set(ids) <= stored
            assert [hit["id"] for hit in searcher.search(Term("body", "merg"), limit=None)]
        with search.indexes().searcher("public") as searcher:
            assert searcher.up_to_date()
    assert len(_ids(app, "merge probe")[0]) == 3


CRASH = textwrap.dedent(
    """
    import os, sys
    import whoosh.writing
    from registry import create_app, search
    from registry.db import session

    def die(self, *args, **kwargs):
        os._exit(137)  # killed after writing the segment, before the table of contents

    whoosh.writing.SegmentWriter._commit_toc = die
    app = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1], "REGISTRY_HOME": sys.argv[2],
                      "SECRET_KEY": "x"})
    with app.app_context():
        search.indexes().catch_up(session)
    """
)


def test_killed_mid_commit_leaves_a_usable_index(app, runner, tmp_path):
    with app.app_context():
        before = make_record(title="Before the crash").id
    # Another node writes records and their jobs; this node's indexes have not applied them yet.
    writer_node = make_app(app.config["DATABASE_URL"], tmp_path / "writer-node")
    with writer_node.app_context():
        import_payload([record_data(title=f"Crash probe {i}") for i in range(20)])
    dispose(writer_node)
    result = subprocess.run(
        [sys.executable, "-c", CRASH, app.config["DATABASE_URL"], app.config["REGISTRY_HOME"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 137, result.stderr
    with app.app_context():
        # The index opens and answers as it was before the interrupted commit.
        with search.indexes().index("public").searcher() as searcher:
            ids = {fields["id"] for fields in searcher.all_stored_fields()}
        assert ids == {before}
    status = runner.invoke(args=["index-status"])
    assert status.exit_code == 0, status.output
    assert len(_ids(app, "crash probe")[0]) == 20


def test_downloads_of_matched_files_go_through_the_policy(searchable):
    client = searchable.test_client()
    page = client.get("/search", query_string={"q": "contact"}).get_data(as_text=True)
    for file_id in re.findall(r"/files/(f\w+)", page):
        with searchable.app_context():
            file = session.get(File, file_id)
            assert policy.can(None, "download", file)


def test_searches_keep_working_while_reindex_swaps(app, runner):
    import threading

    with app.app_context():
        for i in range(10):
            make_record(title=f"Swap probe {i}")
    failures: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def reader():
        client = app.test_client()
        while not stop.is_set():
            try:
                page = client.get("/search?q=swap+probe").get_data(as_text=True)
                counts.append(int(re.search(r'class="count">(\d+)', page).group(1)))
            except BaseException as exc:  # noqa: BLE001 - any failure of the reader fails the test
                failures.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            assert runner.invoke(args=["reindex"]).exit_code == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert counts and set(counts) == {10}


def test_file_text_is_searchable_within_its_tier(app, tmp_path):
    with app.app_context():
        record = make_record(
            title="Record with documents",
            files=[
                {
                    "path": "files/open.pdf",
                    "language": "fr",
                    "tier": "public",
                    "title": "Fiche publique",
                    "text": "Procédure pour les tortues léopard saisies à la frontière.",
                },
                {
                    "path": "files/closed.docx",
                    "language": "en",
                    "tier": "confidential",
                    "title": "Contract",
                    "text": "Annual fee of 12000 for zanzibarite keeping.",
                },
            ],
        )
        officer = make_user("enforcement").email
    page = app.test_client().get("/search?q=tortues+léopard").get_data(as_text=True)
    assert f"/records/{record.id}" in page and "Found in:" in page and "Fiche publique" in page
    assert _ids(app, "zanzibarite")[0] == []
    client = app.test_client()
    login(client, officer, PASSWORD)
    page = client.get("/search?q=zanzibarite").get_data(as_text=True)
    assert f"/records/{record.id}" in page and "<mark>zanzibarite</mark>" in page


def test_failed_extraction_is_recorded_and_shown_to_the_secretariat(app, tmp_path):
    import json

    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n% this is not really a PDF\n%%EOF\n")
    (tmp_path / "in.json").write_text(
        json.dumps(
            {"records": [record_data(title="Broken file", files=[{"path": "broken.pdf", "language": "en"}])]}
        )
    )
    result = app.test_cli_runner().invoke(args=["import", str(tmp_path / "in.json")])
    assert result.exit_code == 0, result.output
    with app.app_context():
        file = session.scalar(select(File))
        assert file.text is None and file.text_error
        record_id = file.record_id
        secretariat = make_user("secretariat").email
    assert "could not be extracted" not in app.test_client().get(f"/records/{record_id}").get_data(
        as_text=True
    )
    client = app.test_client()
    login(client, secretariat, PASSWORD)
    page = client.get(f"/records/{record_id}").get_data(as_text=True)
    assert "Text could not be extracted for search" in page


def test_small_segments_are_merged_after_the_change_is_searchable(app, monkeypatch):
    """Merging ten small segments takes seconds on a large index: other workers see the change first."""
    from registry.search import index as tier_index
    from registry.search import segments

    seen_while_merging = []
    merge_if_due = tier_index.TierIndexes._merge_if_due

    def spy(self, tier, writer_timeout):
        if tier == "public" and segments.small_group(self.index(tier)._segments()):
            # Another worker of the node, with its own searchers, while this one is about to merge.
            other = tier_index.TierIndexes(self.root)
            with other.index("public").searcher() as searcher:
                seen_while_merging.append({f["id"] for f in searcher.all_stored_fields()})
        merge_if_due(self, tier, writer_timeout)

    monkeypatch.setattr(tier_index.TierIndexes, "_merge_if_due", spy)
    with app.app_context():
        ids = [make_record(title=f"Segment probe {i}").id for i in range(segments.MERGE_FACTOR + 2)]
        left = search.indexes().index("public")._segments()
    assert seen_while_merging, "no merge happened"
    assert set(ids[: segments.MERGE_FACTOR]) <= seen_while_merging[0]
    assert len(left) < segments.MERGE_FACTOR
    assert len(_ids(app, "segment probe")[0]) == len(ids)


def test_a_kept_suggestion_ends_with_the_index_version_it_came_from(app):
    """'Did you mean' answers are kept per index version: once the only record with the word leaves the
    public tier, the same typo is no longer answered with it, and a new record's word is offered at once."""
    with app.app_context():
        record = make_record(title="Sturgeonfish holding guidance")
        record_id = record.id
        secretariat = make_user("secretariat")
    assert _ids(app, "sturgeonfsh")[1].suggestion == "sturgeonfish"
    assert _ids(app, "sturgeonfsh")[1].suggestion == "sturgeonfish"
    with app.test_request_context():
        tiers.change_tier(_user(secretariat.email), session.get(Record, record_id), "confidential", REASON)
        commit()
    assert _ids(app, "sturgeonfsh")[1].suggestion is None
    with app.app_context():
        make_record(title="Sturgeonfisk transport note")
    assert _ids(app, "sturgeonfsh")[1].suggestion == "sturgeonfisk"
