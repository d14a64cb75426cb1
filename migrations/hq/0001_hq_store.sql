-- GuideDesk HQ on PostgreSQL: the first schema.
-- Times are timestamptz (UTC instants, millisecond precision); record ids and device ids are uuid.

-- Counters that must be read and advanced under a row lock: the change-log head and floor.
CREATE TABLE hq_meta (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO hq_meta (name, value) VALUES ('change_head', 0), ('change_floor', 0);

-- Enrolled kiosks, with their push cursor (last_seq), clock skew and revocation.
CREATE TABLE devices (
    device       uuid PRIMARY KEY,
    site         text NOT NULL,
    desk         text NOT NULL,
    token_hash   bytea NOT NULL,
    enrolled_at  timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_seq     bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    last_push_at timestamptz,
    skew_ms      bigint NOT NULL DEFAULT 0
);
CREATE INDEX devices_site ON devices (site);

-- SHA-256 of each current credential (HQ never stores a credential itself).
CREATE TABLE tokens (
    token_hash bytea PRIMARY KEY,
    device     uuid NOT NULL REFERENCES devices (device) ON DELETE CASCADE
);

-- One-time enrolment codes, by SHA-256 of the normalised code.
CREATE TABLE enrol_codes (
    code_hash  bytea PRIMARY KEY,
    site       text NOT NULL,
    desk       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_by    uuid
);

-- One receipt per op HQ holds: proves each (device, seq) was taken exactly once.
CREATE TABLE op_receipts (
    device      uuid NOT NULL,
    seq         bigint NOT NULL,
    kind        smallint NOT NULL,
    record_id   uuid NOT NULL,
    received_at timestamptz NOT NULL,
    quarantined boolean NOT NULL,
    clamped     boolean NOT NULL,
    PRIMARY KEY (device, seq)
);

-- Permanently invalid ops, whole (codec bytes), with the reason.
CREATE TABLE quarantine (
    device      uuid NOT NULL,
    seq         bigint NOT NULL,
    kind        smallint NOT NULL,
    record_id   uuid NOT NULL,
    reason      text NOT NULL,
    received_at timestamptz NOT NULL,
    op          bytea NOT NULL,
    PRIMARY KEY (device, seq)
);

-- The reference-data change log devices pull. seq is assigned under the lock of hq_meta('change_head'), so it is
-- commit-ordered: no reader sees seq N+1 before N is committed.
CREATE TABLE change_log (
    seq          bigint PRIMARY KEY,
    stream       text NOT NULL,
    scope        text,
    key          text NOT NULL,
    value        bytea,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_log_stream ON change_log (stream, seq);

-- One table per record kind. Common columns: the first sender (device, site), business time (occurred_at) and the
-- same corrected by the sender's clock skew (corrected_at), HQ's receive times, and the merged record in the app's
-- codec (record). Key fields of each kind are real columns for reports and BI tools.
CREATE TABLE arrivals (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    department        text,
    visit_type        text,
    channel           text,
    priority          text,
    record            bytea NOT NULL
);

CREATE TABLE consultations (
    id                  uuid PRIMARY KEY,
    site                text NOT NULL,
    device              uuid NOT NULL,
    occurred_at         timestamptz NOT NULL,
    corrected_at        timestamptz NOT NULL,
    first_received_at   timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    skew_ms             bigint NOT NULL,
    clock_flagged       boolean NOT NULL,
    channel             text,
    referred_department text,
    arrival             uuid,
    record              bytea NOT NULL
);

CREATE TABLE feedback (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    overall           text,
    complete          boolean,
    survey_version    bigint,
    record            bytea NOT NULL
);

CREATE TABLE cases (
    id                  uuid PRIMARY KEY,
    site                text NOT NULL,
    device              uuid NOT NULL,
    occurred_at         timestamptz NOT NULL,
    corrected_at        timestamptz NOT NULL,
    first_received_at   timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    skew_ms             bigint NOT NULL,
    clock_flagged       boolean NOT NULL,
    grade               text,
    status              text,
    channel             text,
    assigned_department text,
    closed_at           timestamptz,
    record              bytea NOT NULL
);

CREATE TABLE followup_tasks (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    status            text,
    department        text,
    due_to            date,
    record            bytea NOT NULL
);

CREATE TABLE call_attempts (
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
    outcome           text,
    worrying          boolean,
    record            bytea NOT NULL
);

CREATE INDEX arrivals_time ON arrivals (occurred_at, id);
CREATE INDEX arrivals_site ON arrivals (site, occurred_at, id);
CREATE INDEX arrivals_device ON arrivals (device, id);
CREATE INDEX consultations_time ON consultations (occurred_at, id);
CREATE INDEX consultations_site ON consultations (site, occurred_at, id);
CREATE INDEX consultations_device ON consultations (device, id);
CREATE INDEX feedback_time ON feedback (occurred_at, id);
CREATE INDEX feedback_site ON feedback (site, occurred_at, id);
CREATE INDEX feedback_device ON feedback (device, id);
CREATE INDEX cases_time ON cases (occurred_at, id);
CREATE INDEX cases_site ON cases (site, occurred_at, id);
CREATE INDEX cases_device ON cases (device, id);
CREATE INDEX followup_tasks_time ON followup_tasks (occurred_at, id);
CREATE INDEX followup_tasks_site ON followup_tasks (site, occurred_at, id);
CREATE INDEX followup_tasks_device ON followup_tasks (device, id);
CREATE INDEX call_attempts_time ON call_attempts (occurred_at, id);
CREATE INDEX call_attempts_site ON call_attempts (site, occurred_at, id);
CREATE INDEX call_attempts_device ON call_attempts (device, id);
