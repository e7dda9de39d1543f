-- The notebook's offline read (connectors/featurestore/history.py): a feature group's rows with event times
-- in the hour before a given end, the newest write of each (record identifier, event time), no deleted ones,
-- oldest first. Standard SQL: DuckDB over the local store and Athena run it unchanged, on the Glue table
-- DescribeFeatureGroup names.
SELECT *
FROM (
    SELECT *, ROW_NUMBER() OVER (
                  PARTITION BY ${record_identifier}, ${event_time}
                  ORDER BY "api_invocation_time" DESC, "write_time" DESC
              ) AS chainfeat_newest
    FROM ${table}
    WHERE ${event_time} > ${start} AND ${event_time} <= ${end}
) AS recent
WHERE chainfeat_newest = 1 AND NOT "is_deleted"
ORDER BY ${event_time}
