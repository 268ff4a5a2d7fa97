"""Random workflows, checked after every step against the policy table.

Hypothesis plays random sequences of workflow actions (create, save, submit, return, publish,
withdraw, raise a tier) by random actors: the Party users of two Parties, the Secretariat, a reader,
an enforcement officer and an anonymous visitor. The test keeps its own model of each record, built
from the workflow rules alone (draft → submitted → published, returned or withdrawn; a Party works on
its own records; a Party's edits of a published record wait in a revision until it is published; the
Secretariat raises tiers and a raised tier survives the revision the Party prepared before; it lowers a
tier only on purpose, with a reason, never in its edit; a file that a kept version lists stays, retired,
for the record's keepers alone). After
each step it checks that what every viewer is shown (``can``, the SQL forms of the rule, the
projection, the public page, the search index of each tier) is what ``test_permissions``' table says
for the modelled state. A refused action must raise a domain error and change nothing.

Each example uses records of its own; the app, its users and its indexes are shared by all examples.
Every title, sensitive field and file carries a word of its own, so a search for that word tells
exactly which part of which record a tier's index holds.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import String, literal, select, union_all
from sqlalchemy.orm import with_polymorphic

from registry import policy, storage, uploads
from registry.db import commit, rollback, session
from registry.errors import DomainError, Forbidden, Invalid, NotFound
from registry.models import File, Record, User
from registry.services.records import review, shape, write
from registry.services.records import tiers as tier_changes
from registry.services.search import SearchParams, run_search
from registry.vocab import TIERS
from seed.documents import write_pdf

from .factories import make_user, record_data
from .test_permissions import EDITS, READS, SEES_UNPUBLISHED, SUBMITS, WITHDRAWS

PUBLIC, REGISTERED, CONFIDENTIAL = TIERS
ACTORS = ("anonymous", "reader", "enforcement", "party_za", "party_fr", "secretariat")
PARTY_OF = {"party_za": "ZA", "party_fr": "FR"}
TYPES = ("protocol", "rescue_centre", "agreement")
# The sensitive field group each type's marker word goes into, and the attribute that holds it.
MARKED_FIELD = {"rescue_centre": ("address", "address"), "agreement": ("financial_terms", "financial_terms")}
GROUPS = ("address", "coordinates", "financial_terms")
# The search index of each tier, and a viewer who searches it.
MAX_RECORDS = 4
# After a step, the search checks the live title and this many latest titles; after an example, all.
RECENT_TITLES = 3
# The usual life of a record, after its creation: each example starts with a record or two taken a
# random number of these steps along, so that the random steps meet every state.
# On the way, the Secretariat corrects the published record while the Party's revision waits.
HAPPY_PATH = (
    "submit",
    "return",
    "save",
    "submit",
    "publish",
    "save",
    "correct",
    "submit",
    "return",
    "save",
    "submit",
    "publish",
)
SEARCHERS = ((PUBLIC, "anonymous"), (REGISTERED, "reader"), (CONFIDENTIAL, "enforcement"))

SETTINGS = settings(
    max_examples=12,
    stateful_step_count=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_words = itertools.count()
_examples = itertools.count()

# Half the attempts are by whoever usually takes the step (the record's Party, or the Secretariat for
# global records and for the desk's steps), so that long workflows happen; half by anyone.
actors = st.one_of(st.just("usual"), st.sampled_from(ACTORS))
tiers = st.sampled_from(TIERS)
field_tiers = st.dictionaries(st.sampled_from(GROUPS), tiers, max_size=2)
NEW_RECORD = {
    "party": st.sampled_from(["ZA", "FR", None]),
    "kind": st.sampled_from(TYPES),
    "level": st.none() | tiers,
    "fields": field_tiers,
    "file_tiers": st.lists(tiers, max_size=2),
}
EDIT = {
    "restate": st.booleans(),
    "level": tiers,
    "fields": field_tiers,
    "file_tiers": st.lists(tiers, max_size=3),
    "drop": st.booleans(),
    "add": st.none() | tiers,
}


def _word() -> str:
    """A word found nowhere else (digits inside, so no stemming touches it)."""
    return f"wq{next(_words):05d}z"


def _title(word: str) -> str:
    return f"Guidance {word}"


def _stricter(*given: str) -> str:
    return max(given, key=TIERS.index)


def _who(actor: str, party: str | None, desk: bool = False) -> str:
    """The actor drawn, with "usual" resolved for a record of ``party``."""
    if actor != "usual":
        return actor
    if desk or party is None:
        return "secretariat"
    return next(name for name, iso in PARTY_OF.items() if iso == party)


def _role(actor: str, party: str | None) -> str:
    """The actor's row of the table for a record of ``party``."""
    if actor in PARTY_OF:
        return "party_own" if PARTY_OF[actor] == party else "party_other"
    return actor


# The model ---------------------------------------------------------------------------------------


@dataclass
class FileModel:
    """A file as the model expects it: its stored tier, whether it waits for a revision, its word."""

    tier: str
    word: str
    pending: bool = False


@dataclass
class Stated:
    """What a save states: the title's word, the record's and field groups' tiers, files and their tiers."""

    title: str
    tier: str
    fields: dict[str, str]
    files: list[tuple[str, str]]


@dataclass
class RecordModel:
    """One record as the workflow rules say it should be."""

    id: str
    type: str
    party: str | None
    title: str
    tier: str
    fields: dict[str, str]
    files: dict[str, FileModel]
    marker: str | None
    status: str = "draft"
    revision: Stated | None = None
    revision_status: str | None = None
    titles: list[str] = field(default_factory=list)
    file_words: dict[str, str] = field(default_factory=dict)
    # Files some kept version lists, and those of them no longer on the record (kept for the history).
    versioned: set[str] = field(default_factory=set)
    retired: set[str] = field(default_factory=set)
    # The tiers the Secretariat set, by part ("record", ""), ("field", group), ("file", id): they stand.
    floors: dict[tuple[str, str], str] = field(default_factory=dict)

    def live(self) -> Stated:
        """What the live record states (pending files belong to the revision)."""
        files = [(fid, f.tier) for fid, f in self.files.items() if not f.pending]
        return Stated(self.title, self.tier, dict(self.fields), files)

    def file_tier(self, file_id: str) -> str:
        return _stricter(self.files[file_id].tier, self.tier)

    def field_tier(self, group: str) -> str:
        return _stricter(self.fields.get(group, CONFIDENTIAL), self.tier)

    def submittable(self) -> bool:
        """Whether its Party has something to submit (the rule then usually meets such a record)."""
        editable = ("draft", "returned")
        return self.status in editable or (self.status == "published" and self.revision_status in editable)

    def under_review(self) -> bool:
        return self.status == "submitted" or self.revision_status == "submitted"

    def add_file(self, file_id: str, tier: str, word: str, pending: bool) -> None:
        self.files[file_id] = FileModel(tier, word, pending)
        self.file_words[file_id] = word

    def apply(self, stated: Stated, keep_pending: bool) -> None:
        """Make the live record what ``stated`` says; unlisted files go (pending ones stay if asked)."""
        self.title, self.tier, self.fields = stated.title, stated.tier, dict(stated.fields)
        listed = dict(stated.files)
        for fid, file in list(self.files.items()):
            if fid in listed:
                file.tier, file.pending = listed[fid], False
            elif not (file.pending and keep_pending):
                del self.files[fid]
                if fid in self.versioned:
                    self.retired.add(fid)

    def keep_version(self) -> None:
        """A version is kept: it lists the live files."""
        self.versioned |= {fid for fid, f in self.files.items() if not f.pending}

    def lowers(self, stated: Stated) -> bool:
        """Whether ``stated`` makes the record, a field group or a file it keeps more open than now."""
        if TIERS.index(stated.tier) < TIERS.index(self.tier):
            return True
        groups = policy.SENSITIVE_FIELDS.get(self.type, {})
        if any(
            TIERS.index(stated.fields.get(g, CONFIDENTIAL)) < TIERS.index(self.fields.get(g, CONFIDENTIAL))
            for g in groups
        ):
            return True
        return any(
            fid in self.files and TIERS.index(t) < TIERS.index(self.files[fid].tier)
            for fid, t in stated.files
        )

    def parts(self, stated: Stated) -> dict[tuple[str, str], str]:
        """Every part ``stated`` gives a tier to: the record, each field group, each file it keeps."""
        groups = policy.SENSITIVE_FIELDS.get(self.type, {})
        return {
            ("record", ""): stated.tier,
            **{("field", g): stated.fields.get(g, CONFIDENTIAL) for g in groups},
            **{("file", fid): t for fid, t in stated.files if fid in self.files},
        }

    def below_floors(self, stated: Stated) -> dict[tuple[str, str], str]:
        """The parts ``stated`` makes more open than the Secretariat set them, with the stated tier."""
        return {
            part: tier
            for part, tier in self.parts(stated).items()
            if part in self.floors and TIERS.index(tier) < TIERS.index(self.floors[part])
        }


def _every_field(record_type: str, stated: dict[str, str] | None) -> dict[str, str]:
    """The tier of each field group of ``record_type``: a group not stated has the default."""
    return {g: (stated or {}).get(g, CONFIDENTIAL) for g in policy.SENSITIVE_FIELDS.get(record_type, {})}


def sees(actor: str, record: RecordModel) -> bool:
    role = _role(actor, record.party)
    return role in SEES_UNPUBLISHED or (record.status == "published" and record.tier in READS[role])


def reads(actor: str, record: RecordModel, tier: str) -> bool:
    """Whether ``actor`` may read a part of ``record`` at ``tier`` (the record itself being visible)."""
    return sees(actor, record) and tier in READS[_role(actor, record.party)]


def downloads(actor: str, record: RecordModel, file_id: str) -> bool:
    keeps = _role(actor, record.party) in SEES_UNPUBLISHED
    return reads(actor, record, record.file_tier(file_id)) and (keeps or not record.files[file_id].pending)


def indexed(record: RecordModel, tier: str) -> bool:
    """Whether the index of ``tier`` holds ``record``: published and no stricter than the tier."""
    return record.status == "published" and TIERS.index(record.tier) <= TIERS.index(tier)


def words_found(record: RecordModel, tier: str, every: bool = True) -> dict[str, bool]:
    """The words given to ``record``: whether a search in the index of ``tier`` must find each.

    Unless ``every``, only the live title and the latest titles (whatever a step may have changed).
    """
    allowed = (lambda t: TIERS.index(t) <= TIERS.index(tier)) if indexed(record, tier) else (lambda t: False)
    titles = record.titles if every else {record.title, *record.titles[-RECENT_TITLES:]}
    found = {word: word == record.title and allowed(record.tier) for word in titles}
    if record.marker is not None:
        found[record.marker] = allowed(record.field_tier(MARKED_FIELD[record.type][0]))
    for fid, word in record.file_words.items():
        live = fid in record.files and not record.files[fid].pending
        found[word] = live and allowed(record.file_tier(fid))
    return found


# The machine -------------------------------------------------------------------------------------


class WorkflowMachine(RuleBasedStateMachine):
    """Random workflow steps by random actors, each followed by a check of what every viewer sees."""

    records = Bundle("records")

    def __init__(self, app: Flask, users: dict[str, int], scratch: Path) -> None:
        super().__init__()
        self.app, self.users, self.scratch = app, users, scratch
        self.model: dict[str, RecordModel] = {}
        self.touched: set[str] = set()
        self.steady = True
        # Hypothesis seeds the global ``random`` alike for every example, and Whoosh names its new
        # segments with it: without a seed of its own, an example would write segment files under the
        # names an earlier example already used in the same index, and corrupt it.
        random.seed(f"workflow-example-{next(_examples)}")

    # Helpers ---------------------------------------------------------------------------------

    def _viewer(self, actor: str) -> User | None:
        return None if actor == "anonymous" else session.get(User, self.users[actor])

    def _stage(self, word: str) -> uploads.Staged:
        """A real PDF holding ``word``, stored as an accepted upload."""
        path = self.scratch / f"{word}.pdf"
        write_pdf(path, "Annex", f"Annex {word}")
        with path.open("rb") as handle:
            stored = storage.store(_files_dir(), handle, current_app.config["MAX_FILE_SIZE"])
        # Its text extracted as an accepted upload's is, before the workflow writes anything.
        staged = uploads.Staged(
            stored_name=stored.stored_name,
            original_name="annex.pdf",
            size=stored.size,
            sha256=stored.sha256,
            media_type=stored.media_type,
        )
        return uploads.with_text(staged, _files_dir())

    def _attempt(self, actor: str, expected: Any, action: Any) -> Any:
        """Run ``action(viewer)``: commit a success, roll back a refusal, which must be ``expected``."""
        self.steady = False
        with self.app.app_context():
            try:
                result = action(self._viewer(actor))
            except DomainError as exc:
                assert expected is not None, f"{actor} was refused ({exc!r}); the table allows it"
                assert isinstance(exc, expected), f"{actor} was refused with {exc!r}, not {expected}"
                changed = [o for o in session.dirty if session.is_modified(o)] + list(session.new)
                assert changed == [], f"a refused action changed {changed}"
                rollback()
                return None
            assert expected is None, f"{actor} was allowed; the table says {expected.__name__}"
            commit()
            return result

    def _require(self, actor: str, record: RecordModel, allowed: bool) -> Any:
        """The error the table gives: NotFound when hidden, Forbidden when seen but not allowed."""
        if not sees(actor, record):
            return NotFound
        return None if allowed else Forbidden

    # Rules -----------------------------------------------------------------------------------

    @initialize(
        target=records,
        starts=st.lists(
            st.fixed_dictionaries(
                {
                    **NEW_RECORD,
                    "party": st.sampled_from(["ZA", "FR"]),
                    "depth": st.integers(0, len(HAPPY_PATH)),
                    "edits": st.lists(
                        st.fixed_dictionaries({**EDIT, "from_live": st.booleans()}),
                        min_size=len(HAPPY_PATH),
                        max_size=len(HAPPY_PATH),
                    ),
                }
            ),
            min_size=1,
            max_size=2,
        ),
    )
    def start(self, starts):  # type: ignore[no-untyped-def]
        """Records taken along the usual path to random points, for the random steps to work on.

        The invariant checks where they got to; the random steps then check every step they take.
        """
        made = []
        for start in starts:
            depth, edits = start.pop("depth"), iter(start.pop("edits"))
            (record_id,) = self.create("usual", **start).values
            for step in HAPPY_PATH[:depth]:
                edit = next(edits)
                if step in ("save", "correct"):
                    self.save("usual" if step == "save" else "secretariat", record_id, **edit)
                elif step == "return":
                    self.return_to_party("usual", record_id, "Please add the date of adoption.")
                elif step == "publish":
                    self.publish("usual", record_id, "The Party lifted the restriction.")
                else:
                    getattr(self, step)("usual", record_id)
            made.append(record_id)
        return multiple(*made)

    # A few records per example, so that most steps act on records the example already moved along.
    @precondition(lambda self: len(self.model) < MAX_RECORDS)
    @rule(target=records, actor=actors, **NEW_RECORD)
    def create(self, actor, party, kind, level, fields, file_tiers):  # type: ignore[no-untyped-def]
        actor = _who(actor, party)
        role = _role(actor, party)
        expected = None if role in ("party_own", "secretariat") else Forbidden
        fields = {g: t for g, t in fields.items() if g in policy.SENSITIVE_FIELDS.get(kind, {})}
        title = _word()
        marker = _word() if kind in MARKED_FIELD else None
        words = [_word() for _ in file_tiers]

        def action(viewer):  # type: ignore[no-untyped-def]
            staged = [self._stage(w) for w in words]
            entries = [write.FileEntry("en", t, upload=s) for t, s in zip(file_tiers, staged, strict=True)]
            confidentiality: dict[str, Any] = {"fields": fields}
            if level is not None:
                confidentiality["level"] = level
            details = dict(record_data(type=kind)["details"])
            if marker is not None:
                details[MARKED_FIELD[kind][1]] = f"Gate 4, {marker}"
            raw = record_data(
                type=kind,
                title=_title(title),
                party=party,
                scope="national" if party else "global",
                confidentiality=confidentiality,
                details=details,
            )
            record = write.create_record(viewer, raw, entries, _files_dir())
            by_name = {f.stored_name: f.id for f in record.files}
            return record.id, [by_name[s.stored_name] for s in staged]

        done = self._attempt(actor, expected, action)
        if done is None:
            return multiple()
        record_id, file_ids = done
        tier = level or (CONFIDENTIAL if kind == "agreement" else PUBLIC)
        record = RecordModel(record_id, kind, party, title, tier, fields, {}, marker, titles=[title])
        for file_id, tier_, word in zip(file_ids, file_tiers, words, strict=True):
            record.add_file(file_id, tier_, word, pending=False)
        self.model[record_id] = record
        self.touched.add(record_id)
        return multiple(record_id)

    @rule(actor=actors, record_id=records, from_live=st.booleans(), **EDIT)
    def save(self, actor, record_id, restate, level, fields, file_tiers, drop, add, from_live):  # type: ignore[no-untyped-def]
        """Edit the title (and perhaps every tier, a file less, a file more) from the form's shape."""
        record = self.model[record_id]
        actor = _who(actor, record.party)
        role = _role(actor, record.party)
        frozen = record.under_review() and record.status == "published" and role != "secretariat"
        expected = self._require(actor, record, record.status in EDITS.get(role, set()) and not frozen)
        in_revision = role == "party_own" and record.status == "published"
        # The form shows the working version (the revision, if any); the Secretariat may also correct
        # the live one.
        use_live = record.revision is None or (role == "secretariat" and from_live)
        base = record.live() if use_live else record.revision
        assert base is not None
        kept = [(fid, t) for fid, t in base.files if fid in record.files]
        if drop and kept:
            kept = kept[1:]
        if restate:
            fields = {g: t for g, t in fields.items() if g in policy.SENSITIVE_FIELDS.get(record.type, {})}
            kept = [(fid, file_tiers[i] if i < len(file_tiers) else t) for i, (fid, t) in enumerate(kept)]
        else:
            level, fields = base.tier, dict(base.fields)
        if expected is None and role == "secretariat" and record.lowers(Stated("", level, fields, kept)):
            # The Secretariat lowers a tier only on the desk, with a reason.
            expected = Invalid
        below = record.below_floors(Stated("", level, fields, kept))
        if expected is None and role != "secretariat" and below:
            # A tier the Secretariat set stands, whatever the Party posts.
            expected = Invalid
        title, word = _word(), _word()

        def action(viewer):  # type: ignore[no-untyped-def]
            row = session.get(Record, record_id)
            shaped = shape.record_shape(row) if use_live else shape.working_shape(row)
            stated = (
                shaped["title"],
                shaped["confidentiality"]["level"],
                shaped["confidentiality"]["fields"],
                {f["id"]: f["tier"] for f in shaped["files"]},
            )
            # The shape states every field group; one the record leaves unstated has the default.
            every = _every_field(record.type, base.fields)
            assert stated == (_title(base.title), base.tier, every, dict(base.files)), "form shape"
            raw = {key: value for key, value in shaped.items() if key != "files"}
            raw["title"] = _title(title)
            raw["confidentiality"] = {**shaped["confidentiality"], "level": level, "fields": fields}
            entries = [write.FileEntry("en", t, file_id=fid) for fid, t in kept]
            staged = self._stage(word) if add is not None else None
            if staged is not None:
                entries.append(write.FileEntry("en", add, upload=staged))
            write.save_record(viewer, row, raw, entries, _files_dir())
            by_name = {f.stored_name: f.id for f in row.files}
            return by_name[staged.stored_name] if staged is not None else None

        done = self._attempt(actor, expected, action)
        if done is None and expected is not None:
            return
        record.titles.append(title)
        if role == "secretariat":
            # What the Secretariat's own edit changes is what it set.
            before = record.parts(record.live())
            before.update({("file", fid): f.tier for fid, f in record.files.items()})
            for part, tier in record.parts(Stated("", level, fields, kept)).items():
                if part in before and before[part] != tier:
                    record.floors[part] = tier
        files = list(kept)
        if done is not None:
            record.add_file(done, add, word, pending=in_revision)
            files.append((done, add))
        stated = Stated(title, level, fields, files)
        if in_revision:
            listed = dict(files)
            for fid, file in list(record.files.items()):
                if file.pending and fid not in listed:
                    del record.files[fid]
                elif file.pending:
                    # An upload of the revision says what the revision says.
                    file.tier = listed[fid]
            record.revision = stated
            if record.revision_status not in ("draft", "returned"):
                record.revision_status = "draft"
        else:
            record.apply(stated, keep_pending=True)
            if record.status == "published":
                record.keep_version()
        self.touched.add(record_id)

    @precondition(lambda self: any(r.submittable() for r in self.model.values()))
    @rule(actor=actors, record_id=records)
    def submit(self, actor, record_id):  # type: ignore[no-untyped-def]
        record = self.model[record_id]
        actor = _who(actor, record.party)
        allowed = SUBMITS.get(_role(actor, record.party), set())
        revising = record.status == "published" and record.revision_status in allowed
        ready = record.status in allowed or revising
        expected = self._require(actor, record, ready)

        def action(viewer):  # type: ignore[no-untyped-def]
            review.submit(viewer, session.get(Record, record_id))

        self._attempt(actor, expected, action)
        if expected is None:
            if record.status == "published":
                record.revision_status = "submitted"
            else:
                record.status = "submitted"
            self.touched.add(record_id)

    @precondition(lambda self: any(r.under_review() for r in self.model.values()))
    @rule(actor=actors, record_id=records, comment=st.sampled_from(["", "Please add the date of adoption."]))
    def return_to_party(self, actor, record_id, comment):  # type: ignore[no-untyped-def]
        record = self.model[record_id]
        actor = _who(actor, record.party, desk=True)
        expected = self._require(actor, record, _role(actor, record.party) == "secretariat")
        if expected is None and (not comment or not record.under_review()):
            expected = Invalid

        def action(viewer):  # type: ignore[no-untyped-def]
            review.return_to_party(viewer, session.get(Record, record_id), comment)

        self._attempt(actor, expected, action)
        if expected is None:
            if record.revision_status == "submitted":
                record.revision_status = "returned"
            else:
                record.status = "returned"
            self.touched.add(record_id)

    @precondition(lambda self: any(r.under_review() for r in self.model.values()))
    @rule(actor=actors, record_id=records, reason=st.sampled_from(["", "The Party lifted the restriction."]))
    def publish(self, actor, record_id, reason):  # type: ignore[no-untyped-def]
        record = self.model[record_id]
        actor = _who(actor, record.party, desk=True)
        expected = self._require(actor, record, _role(actor, record.party) == "secretariat")
        if expected is None and not record.under_review():
            expected = Invalid
        revising = record.revision_status == "submitted"
        published = record.revision if revising else record.live()
        assert published is not None
        opened = record.below_floors(published)
        if expected is None and not reason and ((revising and record.lowers(published)) or opened):
            # A version that makes something more open (than it is, or than the Secretariat set it) is
            # published only with the reason.
            expected = Invalid

        def action(viewer):  # type: ignore[no-untyped-def]
            review.publish(viewer, session.get(Record, record_id), _files_dir(), reason=reason)

        self._attempt(actor, expected, action)
        if expected is None:
            # Opened on purpose, with the reason: that is now what the Secretariat set.
            record.floors.update(opened)
            if revising:
                assert record.revision is not None
                record.apply(record.revision, keep_pending=False)
                record.revision, record.revision_status = None, None
            record.status = "published"
            record.keep_version()
            self.touched.add(record_id)

    @rule(actor=actors, record_id=records)
    def withdraw(self, actor, record_id):  # type: ignore[no-untyped-def]
        record = self.model[record_id]
        actor = _who(actor, record.party)
        allowed = record.status in WITHDRAWS.get(_role(actor, record.party), set())
        expected = self._require(actor, record, allowed)

        def action(viewer):  # type: ignore[no-untyped-def]
            review.withdraw(viewer, session.get(Record, record_id), "No longer in force.")

        self._attempt(actor, expected, action)
        if expected is None:
            record.status, record.revision_status = "withdrawn", None
            self.touched.add(record_id)

    @rule(
        actor=actors,
        record_id=records,
        part=st.sampled_from(["record", "file", "field"]),
        pick=st.integers(min_value=0, max_value=3),
        by=st.sampled_from([1, 2, -1, -2]),
    )
    def change_tier(self, actor, record_id, part, pick, by):  # type: ignore[no-untyped-def]
        """Move the tier of the record, its ``pick``-th file or field group ``by`` steps (none past the ends).

        Up is a raise; down is the Secretariat's deliberate lowering, with its reason, which never makes a
        file or field more open than its record nor touches a document of the pending revision. A
        protocol has no field groups: its "field" is the address group of rescue centres.
        """
        record = self.model[record_id]
        actor = _who(actor, record.party, desk=True)
        reason = "It names a private keeper." if by > 0 else "The Party agreed to open it."
        if part == "file" and not record.files:
            part = "record"
        file_id = sorted(record.files)[pick % len(record.files)] if part == "file" else None
        groups = list(policy.SENSITIVE_FIELDS.get(record.type, {})) or ["address"]
        if part == "field":
            part = groups[pick % len(groups)]
        if part == "record":
            current = record.tier
        elif file_id is not None:
            current = record.file_tier(file_id)
        else:
            current = record.field_tier(part)
        tier = TIERS[min(max(TIERS.index(current) + by, 0), len(TIERS) - 1)]
        below_record = part != "record" and TIERS.index(tier) < TIERS.index(record.tier)
        if _role(actor, record.party) != "secretariat":
            # Only the desk may mark things confidential; it may say so before looking the record up.
            expected: Any = (Forbidden, NotFound) if not sees(actor, record) else Forbidden
        elif by > 0 and TIERS.index(tier) <= TIERS.index(current):
            expected = Invalid
        elif by < 0 and (
            tier == current or below_record or (file_id is not None and record.files[file_id].pending)
        ):
            expected = Invalid
        elif part not in ("record", "file") and part not in policy.SENSITIVE_FIELDS.get(record.type, {}):
            expected = Invalid
        else:
            expected = None
        change = tier_changes.change_tier

        def action(viewer):  # type: ignore[no-untyped-def]
            row = session.get(Record, record_id)
            if file_id is not None:
                change(viewer, session.get(File, file_id), tier, reason)
            else:
                group = None if part == "record" else part
                change(viewer, row, tier, reason, field=group)

        self._attempt(actor, expected, action)
        if expected is not None:
            return
        # Only a raise reaches the pending revision: a lowering leaves the Party's statement alone.
        revision = record.revision if by > 0 else None
        if file_id is not None:
            record.floors[("file", file_id)] = tier
        else:
            record.floors[("record", "") if part == "record" else ("field", part)] = tier
        if file_id is not None:
            record.files[file_id].tier = tier
            if revision is not None:
                revision.files = [(f, _stricter(t, tier) if f == file_id else t) for f, t in revision.files]
        elif part == "record":
            record.tier = tier
            if revision is not None:
                revision.tier = _stricter(revision.tier, tier)
        else:
            record.fields[part] = tier
            if revision is not None:
                revision.fields[part] = _stricter(revision.fields.get(part, CONFIDENTIAL), tier)
        self.touched.add(record_id)

    # Checks ----------------------------------------------------------------------------------

    @invariant()
    def every_viewer_sees_what_the_table_says(self) -> None:
        with self.app.app_context():
            self._check_viewers(self._check_database())
            self._check_search(self.touched)
        self._check_pages(self.touched)
        self.touched = set()
        self.steady = True

    def teardown(self) -> None:
        # Once more for every record and word of the example: a step must not change what it did not touch.
        if self.steady and self.model:
            with self.app.app_context():
                self._check_search(set(self.model), every=True)
            self._check_pages(set(self.model))

    def _check_database(self) -> dict[str, Record]:
        """The stored state is the modelled one; returns the records, loaded once for every check."""
        every_type = with_polymorphic(Record, "*")
        rows = {r.id: r for r in session.scalars(select(every_type).where(every_type.id.in_(self.model)))}
        for record_id, record in self.model.items():
            row = rows[record_id]
            got = (
                row.status,
                row.revision_status,
                row.tier,
                _every_field(record.type, row.field_tiers),
                row.title,
                {f.id: (f.tier, f.pending) for f in row.files},
            )
            wanted = (
                record.status,
                record.revision_status,
                record.tier,
                _every_field(record.type, record.fields),
                _title(record.title),
                {fid: (f.tier, f.pending) for fid, f in record.files.items()},
            )
            assert got == wanted, f"{record_id}: stored {got}, modelled {wanted}"
        retired = set(
            session.scalars(select(File.id).where(File.record_id.in_(self.model), File.retired.is_(True)))
        )
        assert retired == {fid for record in self.model.values() for fid in record.retired}, "retired files"
        return rows

    def _check_viewers(self, rows: dict[str, Record]) -> None:
        """``can``, ``visible``, ``visible_files_clause`` and ``project`` agree with the table, per viewer."""
        if not self.model:
            return
        viewers = {actor: self._viewer(actor) for actor in ACTORS}
        # Each SQL form of the rule, for every viewer at once (one query each, not one per viewer).
        listed = set(
            tuple(row)
            for row in session.execute(
                union_all(
                    *(
                        policy.visible(select(literal(actor, String), Record.id), viewer).where(
                            Record.id.in_(self.model)
                        )
                        for actor, viewer in viewers.items()
                    )
                )
            )
        )
        file_ids = [fid for record in self.model.values() for fid in record.files]
        files_listed = (
            set(
                tuple(row)
                for row in session.execute(
                    union_all(
                        *(
                            select(literal(actor, String), File.id)
                            .join(Record)
                            .where(policy.visible_files_clause(viewer), File.id.in_(file_ids))
                            for actor, viewer in viewers.items()
                        )
                    )
                )
            )
            if file_ids
            else set()
        )
        mismatches: list[tuple[Any, ...]] = []
        for actor, viewer in viewers.items():
            for record_id, record in self.model.items():
                row = rows[record_id]
                wanted = sees(actor, record)
                if ((actor, record_id) in listed) != wanted:
                    mismatches.append(("visible()", actor, record_id, wanted))
                if policy.can(viewer, "view", row) != wanted:
                    mismatches.append(("can view", actor, record_id, wanted))
                for file_id in record.retired:
                    # History: the record's keepers only, whatever tier the file had.
                    keeps = _role(actor, record.party) in SEES_UNPUBLISHED
                    if policy.can(viewer, "download", session.get(File, file_id)) != keeps:
                        mismatches.append(("can download retired", actor, record_id, file_id, keeps))
                for file in row.files:
                    want_file = downloads(actor, record, file.id)
                    if policy.can(viewer, "download", file) != want_file:
                        mismatches.append(("can download", actor, record_id, file.id, want_file))
                    if ((actor, file.id) in files_listed) != want_file:
                        mismatches.append(("visible_files_clause", actor, record_id, file.id, want_file))
                if not wanted:
                    continue
                view = shape.project(row, viewer)
                if view.title != _title(record.title):
                    mismatches.append(("projected title", actor, record_id, view.title))
                shown = {f.id for f in view.files}
                want_shown = {
                    fid for fid, f in record.files.items() if not f.pending and downloads(actor, record, fid)
                }
                if shown != want_shown:
                    mismatches.append(("projected files", actor, record_id, shown, want_shown))
                if record.marker is not None:
                    group, attr = MARKED_FIELD[record.type]
                    if (attr in view.details) != reads(actor, record, record.field_tier(group)):
                        mismatches.append(("projected field", actor, record_id, group))
        assert mismatches == []

    def _check_search(self, record_ids: set[str], every: bool = False) -> None:
        """Each tier's index finds exactly the words of ``record_ids`` that the tier may see, published."""
        mismatches = []
        for tier, actor in SEARCHERS:
            viewer = self._viewer(actor)
            for record_id in sorted(record_ids):
                for word, wanted in words_found(self.model[record_id], tier, every).items():
                    results = run_search(viewer, SearchParams(q=word, per_page=50))
                    got = {hit.record.id for hit in results.hits}
                    if got != ({record_id} if wanted else set()) or results.total != len(got):
                        mismatches.append((tier, record_id, word, wanted, got, results.total))
        assert mismatches == []

    def _check_pages(self, record_ids: set[str]) -> None:
        """An anonymous visitor gets each record page (200) or 404 as the table says, and no hidden word."""
        client = self.app.test_client()
        mismatches = []
        for record_id in sorted(record_ids):
            record = self.model[record_id]
            response = client.get(f"/records/{record_id}")
            wanted = sees("anonymous", record)
            if response.status_code != (200 if wanted else 404):
                mismatches.append(("status", record_id, wanted, response.status_code))
                continue
            body = response.get_data(as_text=True)
            leaked = [w for w in words_found(record, CONFIDENTIAL) if w in body and w != record.title]
            marked = record.marker is not None and record.field_tier(MARKED_FIELD[record.type][0])
            if marked and reads("anonymous", record, marked):
                leaked = [w for w in leaked if w != record.marker]
            if wanted and record.title not in body:
                mismatches.append(("title missing", record_id))
            if leaked:
                mismatches.append(("leaked", record_id, leaked))
        assert mismatches == []


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def test_random_workflows_show_each_viewer_what_the_table_says(
    app: Flask, backend: str, tmp_path: Path
) -> None:
    with app.app_context():
        users = {
            "reader": make_user("reader").id,
            "enforcement": make_user("enforcement").id,
            "party_za": make_user("party", "ZA").id,
            "party_fr": make_user("party", "FR").id,
            "secretariat": make_user("secretariat").id,
        }
    # PostgreSQL runs half as many: the state machine's rules are the app's, the same on both; the
    # backend shows its differences (SQL, locks, ordering) within the first few workflows.
    examples = SETTINGS.max_examples if backend == "sqlite" else SETTINGS.max_examples // 2
    run_state_machine_as_test(
        lambda: WorkflowMachine(app, users, tmp_path), settings=settings(SETTINGS, max_examples=examples)
    )
