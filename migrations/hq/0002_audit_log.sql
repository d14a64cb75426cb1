-- The kiosks' audit logs (record kind 7): who viewed, revealed, changed, exported or printed which record.
-- Same shape as the other record tables: filing columns, key columns, and the codec record (which carries the
-- hash chain: chain index, previous hash, hash).
CREATE TABLE audit_entries (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    actor             text,
    action            text,
    target_kind       text,
    target_id         uuid,
    chain_index       bigint,
    record            bytea NOT NULL
);

CREATE INDEX audit_entries_time ON audit_entries (occurred_at, id);
CREATE INDEX audit_entries_site ON audit_entries (site, occurred_at, id);
CREATE INDEX audit_entries_device ON audit_entries (device, id);
CREATE INDEX audit_entries_target ON audit_entries (target_id) WHERE target_id IS NOT NULL;
