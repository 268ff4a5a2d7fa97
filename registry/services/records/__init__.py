"""Records: the one way to read, shape, create, review, reclassify and remember them.

``read`` finds records for a viewer through the policy; ``shape`` is the one mapping between a
record and the JSON shape of ``schemas``; ``write`` is the only path that creates a record or
saves a change to it (forms, import, the seed); ``review`` is the state machine (draft →
submitted → published, returned or withdrawn); ``tiers`` changes and checks confidentiality
tiers; ``history`` keeps and compares the published versions.

Submissions and their review: draft → submitted → published, returned or withdrawn.

A Party works on its own records: a new record is a draft until it is submitted; a published
record stays live while the Party prepares its next version (``Record.revision``), which goes
through the same review. Every publication keeps a ``RecordVersion``, and a file that a kept
version lists stays stored (``File.retired``) when the record drops it. Every step writes the
audit trail, each tier change included, and after commit tells the people concerned by e-mail
(``services.notices``).

The Party states the tiers of its records, never below one the Secretariat set. The Secretariat
raises them at will; it makes a part more open only on purpose, with a reason: on the desk
(``tiers.change_tier``), or by publishing a version that makes a part more open than it
is published or than the Secretariat set it. Its own edit of a record never lowers a tier.

Form data arrive as the JSON shape, already validated by ``schemas.load_record``; files arrive
as ``FileEntry`` values naming either a file already attached or an upload already stored.
"""
