"""message search index, references between events, mentions

Revision ID: 0006
Revises: 0004

- Full-text search over chat content: on SQLite a contentless FTS5 table kept in
  step with ``room_events`` by triggers (insert, update of data, delete, and the
  cascade of a room's deletion); on PostgreSQL a generated ``tsvector`` column with a
  GIN index. Both use simple lower-cased words (no stemming, no stop words).
- ``ix_room_events_ref``: the message an event refers to (``data.message_id`` of an
  edit, delete or reaction, ``data.reply_to`` of a reply), so a message's edits and
  replies are found without reading its room. Partial: only events that refer to
  something are in it (and the planners never take it for a plain room filter).
- ``message_mentions``: who a chat mentions, for their unread mention counts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SQLITE = [
    # ``room`` holds one word, r<room pk>, so that a search within a room is an AND
    # of two lists of the index, whatever the room's size.
    "CREATE VIRTUAL TABLE room_events_fts USING fts5(content, room, content='', "
    "tokenize='unicode61')",
    # Every path that changes a chat's content (append, edit, tombstone, room
    # deletion) goes through room_events, so the index cannot drift from it.
    """CREATE TRIGGER room_events_fts_insert AFTER INSERT ON room_events
       WHEN new.type = 'chat' AND json_extract(new.data, '$.content') IS NOT NULL
       BEGIN
         INSERT INTO room_events_fts(rowid, content, room)
         VALUES (new.id, json_extract(new.data, '$.content'), 'r' || new.room_pk);
       END""",
    """CREATE TRIGGER room_events_fts_delete AFTER DELETE ON room_events
       WHEN old.type = 'chat' AND json_extract(old.data, '$.content') IS NOT NULL
       BEGIN
         INSERT INTO room_events_fts(room_events_fts, rowid, content, room)
         VALUES ('delete', old.id, json_extract(old.data, '$.content'), 'r' || old.room_pk);
       END""",
    # One trigger, so the old words leave before the new ones come (the order of
    # several triggers on one event is not defined).
    """CREATE TRIGGER room_events_fts_update AFTER UPDATE OF data ON room_events
       WHEN old.type = 'chat' OR new.type = 'chat'
       BEGIN
         INSERT INTO room_events_fts(room_events_fts, rowid, content, room)
         SELECT 'delete', old.id, json_extract(old.data, '$.content'), 'r' || old.room_pk
         WHERE old.type = 'chat' AND json_extract(old.data, '$.content') IS NOT NULL;
         INSERT INTO room_events_fts(rowid, content, room)
         SELECT new.id, json_extract(new.data, '$.content'), 'r' || new.room_pk
         WHERE new.type = 'chat' AND json_extract(new.data, '$.content') IS NOT NULL;
       END""",
    """INSERT INTO room_events_fts(rowid, content, room)
       SELECT id, json_extract(data, '$.content'), 'r' || room_pk FROM room_events
       WHERE type = 'chat' AND json_extract(data, '$.content') IS NOT NULL""",
    """CREATE INDEX ix_room_events_ref ON room_events (room_pk,
       coalesce(json_extract(data, '$.message_id'), json_extract(data, '$.reply_to')))
       WHERE coalesce(json_extract(data, '$.message_id'), json_extract(data, '$.reply_to'))
       IS NOT NULL""",
]

_POSTGRES = [
    """ALTER TABLE room_events ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
       CASE WHEN type = 'chat' THEN to_tsvector('simple'::regconfig, coalesce(data ->> 'content', ''))
       END) STORED""",
    "CREATE INDEX ix_room_events_search ON room_events USING gin (search_vector)",
    """CREATE INDEX ix_room_events_ref ON room_events (room_pk,
       (coalesce(data ->> 'message_id', data ->> 'reply_to')))
       WHERE coalesce(data ->> 'message_id', data ->> 'reply_to') IS NOT NULL""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _SQLITE if sqlite else _POSTGRES:
        op.execute(statement)
    if sqlite and _sqlite_version() >= (3, 42, 0):
        # Deleted rows leave the index itself at once, not only at the next merge.
        op.execute("INSERT INTO room_events_fts(room_events_fts, rank) VALUES ('secure-delete', 1)")
    op.create_table(
        "message_mentions",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("room_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["room_events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["room_pk"], ["rooms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_id", "username"),
    )
    with op.batch_alter_table("message_mentions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_mentions_user", ["username", "room_pk", "seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_mentions", schema=None) as batch_op:
        batch_op.drop_index("ix_message_mentions_user")
    op.drop_table("message_mentions")
    op.execute("DROP INDEX ix_room_events_ref")
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER room_events_fts_{trigger}")
        op.execute("DROP TABLE room_events_fts")
    else:
        op.execute("DROP INDEX ix_room_events_search")
        op.execute("ALTER TABLE room_events DROP COLUMN search_vector")


def _sqlite_version() -> tuple[int, ...]:
    import sqlite3

    return sqlite3.sqlite_version_info
