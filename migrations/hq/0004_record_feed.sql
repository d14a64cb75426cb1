-- The site record feed (hq::feed): every record but audit entries at its latest position in its site's
-- commit-ordered feed, which the site's devices pull. seq is assigned under the lock of the site's head row in
-- hq_meta ('feed_head:<site>'), taken at the end of each push transaction, so within a site it is commit-ordered.
-- echo: the device whose op produced exactly this state (not sent back to it). stamp_*: the highest op stamp
-- merged into the record (wall ms, logical counter, node as a two's-complement bigint). last_device: the device
-- whose op was merged last (desks show where a record was just changed).
CREATE TABLE record_feed (
    kind          smallint NOT NULL,
    record_id     uuid NOT NULL,
    site          text NOT NULL,
    seq           bigint NOT NULL,
    echo          uuid,
    stamp_wall    bigint NOT NULL,
    stamp_logical bigint NOT NULL,
    stamp_node    bigint NOT NULL,
    last_device   uuid NOT NULL,
    PRIMARY KEY (kind, record_id)
);
CREATE UNIQUE INDEX record_feed_site ON record_feed (site, seq);

-- Records held before the feed existed join it in the order HQ received them.
INSERT INTO record_feed (kind, record_id, site, seq, echo, stamp_wall, stamp_logical, stamp_node, last_device)
SELECT kind, id, site, row_number() OVER (PARTITION BY site ORDER BY first_received_at, kind, id), NULL, 0, 0, 0,
    device
FROM (
    SELECT 1::smallint AS kind, id, site, device, first_received_at FROM arrivals
    UNION ALL SELECT 2::smallint, id, site, device, first_received_at FROM consultations
    UNION ALL SELECT 3::smallint, id, site, device, first_received_at FROM feedback
    UNION ALL SELECT 4::smallint, id, site, device, first_received_at FROM cases
    UNION ALL SELECT 5::smallint, id, site, device, first_received_at FROM followup_tasks
    UNION ALL SELECT 6::smallint, id, site, device, first_received_at FROM call_attempts
) held;
INSERT INTO hq_meta (name, value)
SELECT 'feed_head:' || site, max(seq) FROM record_feed GROUP BY site;
