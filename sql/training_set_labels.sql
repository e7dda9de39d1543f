-- chainfeat training-set, locally: the labels file (read by pyarrow, registered under a name of its own) under the
-- table name the training-set statement reads, as the user's labels table is on Athena.
CREATE SCHEMA IF NOT EXISTS ${labels_schema};
CREATE VIEW ${labels_table} AS SELECT * FROM ${labels_input};
