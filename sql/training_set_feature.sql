-- One output column of a feature group's step (training_set_group.sql's feature_columns, repeated per
-- feature): the feature under its group-qualified name, so two groups' columns never clash.
newest.${feature} AS ${output_column}
