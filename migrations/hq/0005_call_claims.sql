-- Call claims (model::followup::CallClaim): a caller's hold on a follow-up task, or its release, replicated to
-- every desk of the site so two callers do not ring the same patient. Append-only; the latest event of a task wins.
CREATE TABLE call_claims (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    task              uuid,
    claimed_by        text,
    released          boolean,
    record            bytea NOT NULL
);
CREATE INDEX call_claims_time ON call_claims (occurred_at, id);
CREATE INDEX call_claims_site ON call_claims (site, occurred_at, id);
CREATE INDEX call_claims_device ON call_claims (device, id);
CREATE INDEX call_claims_task ON call_claims (task);
