package validate

import "github.com/caddy-mlflow/caddy-mlflow/tracking"

// DatasetInputs checks the datasets of a log-inputs request as MLflow's
// _validate_dataset_inputs does, input by input: the dataset's name ≤ 500,
// digest ≤ 36, source ≤ 65535, schema ≤ 1048575 and profile ≤ 16777215 code
// points, then that input's tags, key ≤ 255 and value ≤ 500 code points.
// Messages name the field alone: "'name' exceeds the maximum length of 500
// characters", "'key' exceeds the maximum length of 255 characters". Empty
// names, digests and tag values are accepted (MLflow 2.22.1 does), and input
// tag keys get no character check.
//
// In log-inputs, MLflow first checks the run id (RunID with path "run_id"),
// then the datasets, then the run's existence and state.
func DatasetInputs(inputs []tracking.DatasetInput) error {
	for i := range inputs {
		d := &inputs[i].Dataset
		switch {
		case exceedsRunes(d.Name, MaxDatasetNameLength):
			return exceedsMaxLength("name", MaxDatasetNameLength)
		case exceedsRunes(d.Digest, MaxDatasetDigestLength):
			return exceedsMaxLength("digest", MaxDatasetDigestLength)
		case exceedsRunes(d.Source, MaxDatasetSourceLength):
			return exceedsMaxLength("source", MaxDatasetSourceLength)
		case exceedsRunes(d.Schema, MaxDatasetSchemaLength):
			return exceedsMaxLength("schema", MaxDatasetSchemaLength)
		case exceedsRunes(d.Profile, MaxDatasetProfileLength):
			return exceedsMaxLength("profile", MaxDatasetProfileLength)
		}
		for _, t := range inputs[i].Tags {
			if exceedsRunes(t.Key, MaxInputTagKeyLength) {
				return exceedsMaxLength("key", MaxInputTagKeyLength)
			}
			if exceedsRunes(t.Value, MaxInputTagValueLength) {
				return exceedsMaxLength("value", MaxInputTagValueLength)
			}
		}
	}
	return nil
}
