-- The backfill's dead letter: the rows sinks/dead_letter.sql writes (the line, its reason, here the backfill's start),
-- without its counter. The counter is a Python function behind a keyed OVER, so that in the streaming job it does not
-- hold the source back; in a batch job that OVER is a sort and the function a Python worker started in a stage of
-- its own, run after the reading: 1-2 s of a 1 M backfill for what the backfill's report counts anyway
-- (outputs.sql). Here the rows go straight from the reading to the sink.
INSERT INTO dead_letter_sink
SELECT
${dead_letter_line} AS line,
    reason,
    proc_time
FROM parsed_lines
WHERE reason IS NOT NULL;
