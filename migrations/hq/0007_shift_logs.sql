-- The guides' shift handovers and daily logs (交班记录, 工作日志) replicated from the desks.

CREATE TABLE shift_logs (
    id                uuid PRIMARY KEY,
    site              text NOT NULL,
    device            uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    corrected_at      timestamptz NOT NULL,
    first_received_at timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    skew_ms           bigint NOT NULL,
    clock_flagged     boolean NOT NULL,
    kind              text,
    author            text,
    day               date,
    shift             text,
    record            bytea NOT NULL
);
CREATE INDEX shift_logs_time ON shift_logs (occurred_at, id);
CREATE INDEX shift_logs_site ON shift_logs (site, occurred_at, id);
CREATE INDEX shift_logs_device ON shift_logs (device, id);
