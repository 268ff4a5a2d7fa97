"""Hidden and missing cost the same: timing cannot tell a record or file one may not see from none.

Issue 10, item 4: a record or file the viewer may not see answered 404 in about 3 ms, a well-formed
id of nothing in about 1.8 ms, because the lookup loaded the hidden record (its translations, files,
taxa and subclass) before asking the policy, and a missing id stopped after one query. Now the
policy is part of the one query, so both get no row from the same statement.

How the test decides, robustly, on a shared 2-core machine under load from other processes:

* Requests for the hidden object and for a missing id are **interleaved** (and the order of each
  pair alternates), after a warm-up, so that whatever else the machine does slows both alike.
* It compares **medians**, as the issue asks, and **lower quartiles**: quantiles, unlike means, are
  not moved by a few requests another process delayed. Under heavy load the times split in two
  (requests that ran through, and requests that waited for a core), so the median can fall between
  the two and wander, while the lower quartile stays among the requests that ran through, which
  show the work itself. Each must differ by less than its noise, the largest of: 0.15 ms (a few
  Python calls, below which no handful of requests tells anything apart); 10% of the faster of the
  two; and a bound from the spread:
* for the medians, 0.4 times the larger inter-quartile range (IQR). If both came from one normal
  distribution, the standard error of the difference of two medians of ``N`` samples would be
  about 0.93 × IQR × sqrt(2 / N), 0.09 × IQR for N = 200, so this is over four standard errors: a
  busy machine widens the spread, and the bound widens with it instead of failing by chance;
* for the lower quartiles, four standard errors of their difference, each estimated from the local
  slope of the quantile function (Siddiqui, Bloch and Gastwirth): (q(0.35) - q(0.15)) / 0.2 ×
  sqrt(0.25 × 0.75 / N).

Measured on this machine (SQLite and PostgreSQL; idle, and beside two and four CPU-bound
processes): with the fixed lookups neither difference reached two thirds of its bound (a third
when idle); with the old ones, where hidden cost about twice missing, every run exceeded one of
them 2.4 times over or more, and the lower quartiles' always, by 1.7 times at least (the medians'
not always, under load).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from registry import policy
from registry.db import session
from registry.models import File, Record, new_id

from .conftest import login, without_csrf
from .factories import PASSWORD, make_record, make_user

SAMPLES = 200
WARM_UP = 20
FLOOR_NS = 150_000


def _heavy(**overrides: object) -> dict[str, object]:
    """A record with everything that a full load of it reads: taxa, translations, files, details."""
    return {
        "type": "rescue_centre",
        "title": "A centre with many parts",
        "taxa": ["Psittacus erithacus", "Testudo graeca", "Pan troglodytes"],
        "translations": [
            {"language": "fr", "title": "Un centre", "summary": "Résumé."},
            {"language": "es", "title": "Un centro", "summary": "Resumen."},
        ],
        "details": {
            "facility_type": "rescue_centre",
            "operator": "Operator",
            "city": "Town",
            "address": "1 Road",
            "contacts": [{"name": "A Person", "email": "a@example.org", "phone": "+00 1"}],
        },
        "files": [
            {"path": f"files/{n}.pdf", "language": "en", "tier": "public", "text": f"Document {n}."}
            for n in ("one", "two", "three")
        ],
        **overrides,
    }


def _timed(client: FlaskClient, url: str) -> tuple[int, str, int]:
    start = time.perf_counter_ns()
    response = client.get(url)
    elapsed = time.perf_counter_ns() - start
    # A signed-in page carries a fresh CSRF token in its sign-out form.
    return elapsed, without_csrf(response.get_data(as_text=True)), response.status_code


def _race(client: FlaskClient, hidden: str, missing: str) -> tuple[list[int], list[int]]:
    """Interleaved timings (ns) of ``hidden`` and ``missing``; both must answer the same 404."""
    times: dict[str, list[int]] = {hidden: [], missing: []}
    answers: dict[str, set[tuple[int, str]]] = {hidden: set(), missing: set()}
    for _ in range(WARM_UP):
        client.get(hidden)
        client.get(missing)
    # A collection that happens to fall in one request would be noise of our own making.
    gc.collect()
    gc.disable()
    try:
        for i in range(SAMPLES):
            for url in (hidden, missing) if i % 2 == 0 else (missing, hidden):
                elapsed, body, status = _timed(client, url)
                times[url].append(elapsed)
                answers[url].add((status, body))
    finally:
        gc.enable()
    assert answers[hidden] == answers[missing] and len(answers[hidden]) == 1
    assert next(iter(answers[hidden]))[0] == 404
    return times[hidden], times[missing]


def _quantile(values: list[int], p: float) -> float:
    """The ``p``-quantile of ``values`` (``p`` in hundredths)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(p * 100) - 1]


def _iqr(values: list[int]) -> float:
    return _quantile(values, 0.75) - _quantile(values, 0.25)


def _standard_error(values: list[int], p: float, delta: float = 0.10) -> float:
    """The standard error of the ``p``-quantile of ``values``, from the local slope of the quantiles."""
    slope = (_quantile(values, p + delta) - _quantile(values, p - delta)) / (2 * delta)
    return slope * math.sqrt(p * (1 - p) / len(values))


def _assert_same_cost(hidden: list[int], missing: list[int], what: str) -> None:
    """The medians, and the lower quartiles, differ by less than the noise (see the module's docstring)."""
    spreads = {
        "medians": (0.50, 0.4 * max(_iqr(hidden), _iqr(missing))),
        "lower quartiles": (
            0.25,
            4 * math.hypot(_standard_error(hidden, 0.25), _standard_error(missing, 0.25)),
        ),
    }
    for name, (p, spread) in spreads.items():
        of_hidden, of_missing = _quantile(hidden, p), _quantile(missing, p)
        noise = max(FLOOR_NS, 0.10 * min(of_hidden, of_missing), spread)
        assert abs(of_hidden - of_missing) < noise, (
            f"{what}: hidden takes {of_hidden / 1e6:.3f} ms, missing {of_missing / 1e6:.3f} ms "
            f"({name} of {SAMPLES}); the noise allows {noise / 1e6:.3f} ms"
        )


def _anonymous_record(client: FlaskClient) -> tuple[str, str]:
    record = make_record(**_heavy(confidentiality={"level": "confidential"}))
    return "/records/{}", record.id


def _anonymous_file(client: FlaskClient) -> tuple[str, str]:
    files = [
        {"path": "files/open.pdf", "language": "en", "tier": "public", "text": "Open."},
        {"path": "files/closed.pdf", "language": "en", "tier": "confidential", "text": "Closed."},
    ]
    record = make_record(**_heavy(files=files))
    return "/files/{}", next(f.id for f in record.files if f.tier == "confidential")


def _other_partys_published_record(client: FlaskClient) -> tuple[str, str]:
    # France's record is published and public, so ZA may read it on the public pages, but does not
    # keep it: its history page must cost what a missing record's costs.
    record = make_record(**_heavy(party="FR"))
    make_user("party", "ZA")
    login(client, "party-za@test.example", PASSWORD)
    return "/submit/{}/history", record.id


def _other_partys_draft(client: FlaskClient) -> tuple[str, str]:
    record = make_record(**_heavy(party="FR", status="draft"))
    make_user("party", "ZA")
    login(client, "party-za@test.example", PASSWORD)
    return "/submit/{}", record.id


@pytest.mark.parametrize(
    "hide",
    [_anonymous_record, _anonymous_file, _other_partys_published_record, _other_partys_draft],
    ids=["confidential-record", "confidential-file", "other-partys-history", "other-partys-draft"],
)
def test_a_hidden_record_or_file_answers_as_fast_as_a_missing_one(
    app, client: FlaskClient, hide: Callable[[FlaskClient], tuple[str, str]]
) -> None:
    """Issue 10, item 4: the medians of many interleaved requests for something hidden and for a
    well-formed id of nothing differ by less than the noise, and the two answers are the same bytes."""
    with app.app_context():
        url, hidden_id = hide(client)
        missing_id = new_id(hidden_id[0])
        assert session.get(File if hidden_id[0] == "f" else Record, missing_id) is None
    hidden_times, missing_times = _race(client, url.format(hidden_id), url.format(missing_id))
    _assert_same_cost(hidden_times, missing_times, url.format(hidden_id))


def test_the_partys_pages_query_exactly_the_records_the_policy_lets_it_keep(app) -> None:
    """Issue 10, item 4: a Party's pages look a record up with ``policy.kept_clause`` in the query
    (so another Party's record costs what a missing one does); that SQL form of the rule selects
    exactly the records ``can(viewer, "see_history", record)`` allows, for every kind of viewer."""
    with app.app_context():
        for party, status in (("ZA", "draft"), ("ZA", "published"), ("FR", "draft"), ("FR", "published")):
            make_record(party=party, status=status, title=f"{party} {status}")
        make_record(party=None, scope="global", title="Global guidance")
        viewers = [
            None,
            make_user("reader"),
            make_user("enforcement"),
            make_user("party", "ZA"),
            make_user("party", "FR"),
            make_user("secretariat"),
        ]
        everything = session.scalars(select(Record)).all()
        sizes = []
        for viewer in viewers:
            kept = set(session.scalars(select(Record.id).where(policy.kept_clause(viewer))))
            allowed = {r.id for r in everything if policy.can(viewer, "see_history", r)}
            assert kept == allowed, getattr(viewer, "email", "anonymous")
            sizes.append(len(kept))
        # Not vacuous: each Party keeps its own two, the Secretariat all five, the others none.
        assert sizes == [0, 0, 0, 2, 2, 5]


def test_a_file_whose_stored_bytes_are_gone_answers_like_a_missing_one(app, client: FlaskClient) -> None:
    """Issue 10, item 4: the lookup now finds a downloadable file in the query; one whose stored
    bytes have gone (a disk restored without them) still answers the 404 of a file that never was."""
    with app.app_context():
        record = make_record(
            files=[{"path": "files/open.pdf", "language": "en", "tier": "public", "text": "Open."}]
        )
        file = record.files[0]
        file_id = file.id
        stored = Path(app.config["FILES_DIR"]) / file.stored_name
    with client.get(f"/files/{file_id}") as response:
        assert response.status_code == 200
    stored.unlink()
    gone, missing = client.get(f"/files/{file_id}"), client.get(f"/files/{new_id('f')}")
    assert gone.status_code == missing.status_code == 404
    assert gone.get_data() == missing.get_data()
