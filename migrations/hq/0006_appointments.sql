-- Appointments (预约) replicated from the desks: one row per booking, its status derived from the merged events.

CREATE TABLE appointments (
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
    status            text,
    channel           text,
    department        text,
    doctor            text,
    day               date,
    session           text,
    record            bytea NOT NULL
);
CREATE INDEX appointments_time ON appointments (occurred_at, id);
CREATE INDEX appointments_site ON appointments (site, occurred_at, id);
CREATE INDEX appointments_device ON appointments (device, id);
CREATE INDEX appointments_day ON appointments (site, day, session);
