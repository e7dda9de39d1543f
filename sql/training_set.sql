-- chainfeat training-set: a labels table joined point in time to one or more feature groups' offline stores,
-- in ONE statement that DuckDB (chainfeat, locally) and Athena (Trino) run unchanged: standard SQL only
-- (CTEs, ROW_NUMBER, CAST to VARCHAR/DOUBLE, double-quoted identifiers), no ASOF, QUALIFY, `::` or EXCLUDE.
-- Every placeholder is a double-quoted identifier (job/offline/training_set.py); group_steps is training_set_group.sql
-- once per feature group ("step_1", "step_2", ... after "step_0", the labels): each step is the previous one
-- with that group's features added, so the last step is the training set. Its rows: every label row, once.
WITH "step_0" AS (
    SELECT * FROM ${labels_table}
),
${group_steps}
SELECT *
FROM ${last_step}
ORDER BY ${label_time}
