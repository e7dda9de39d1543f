-- One feature group's step of training_set.sql (repeated per group: each group has its own table, key and
-- columns, and a standard SQL statement cannot take a list of tables). For every distinct (entity, label time)
-- of the labels: the group's offline record with the newest event time at or before the label time; on equal
-- event times the newest write (api_invocation_time, then write_time: the SageMaker SDK's DatasetBuilder
-- order). If that record is a delete marker (is_deleted), the label gets no features: the record did not
-- exist at that time. A record written later with an earlier event time (a late correction) counts by its
-- event time, like every other: it is used for label times at or after its event time, as DatasetBuilder
-- does. Labels with no such record keep their row, with nulls (LEFT JOIN).
${step} AS (
    SELECT ${previous}.*, ${feature_columns}
    FROM ${previous}
    LEFT JOIN (
        SELECT label_keys.chainfeat_entity, label_keys.chainfeat_label_time, features.*,
               ROW_NUMBER() OVER (
                   PARTITION BY label_keys.chainfeat_entity, label_keys.chainfeat_label_time
                   ORDER BY CAST(features.${event_time} AS DOUBLE) DESC,
                            features."api_invocation_time" DESC, features."write_time" DESC
               ) AS chainfeat_newest
        FROM (
            SELECT DISTINCT CAST(${entity} AS VARCHAR) AS chainfeat_entity,
                            CAST(${label_time} AS DOUBLE) AS chainfeat_label_time
            FROM ${previous}
        ) AS label_keys
        JOIN ${feature_table} AS features
          ON CAST(features.${record_identifier} AS VARCHAR) = label_keys.chainfeat_entity
         AND CAST(features.${event_time} AS DOUBLE) <= label_keys.chainfeat_label_time
    ) AS newest
      ON newest.chainfeat_entity = CAST(${previous}.${entity} AS VARCHAR)
     AND newest.chainfeat_label_time = CAST(${previous}.${label_time} AS DOUBLE)
     AND newest.chainfeat_newest = 1
     AND NOT newest."is_deleted"
)
