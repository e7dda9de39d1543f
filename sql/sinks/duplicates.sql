-- The streaming job's dropped duplicates: every sighting of a hash after the first in its second (dedup.sql), into a
-- sink that discards them. Its records in (a Flink metric of this sink) count the duplicates exactly where they are
-- dropped, as the watermark closes their second: the live view shows them, and apart from them the sightings still
-- waiting for the watermark (job/local/monitor.py).
CREATE TEMPORARY TABLE ${duplicates_sink} (
    `hash` STRING
) WITH (
    'connector' = 'blackhole'
);

INSERT INTO ${duplicates_sink}
SELECT `hash`
FROM transaction_sightings
WHERE sighting > 1;
