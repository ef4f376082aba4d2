// Package tracking holds the domain of the MLflow tracking server: the
// entities clients log (experiments, runs, metrics, params, tags, dataset
// inputs), MLflow's error model, and the Store interface through which the
// HTTP handlers reach a backend.
//
// The package knows nothing about Caddy or bbolt. Sub-packages implement the
// pieces: search (the filter and order_by grammar), boltstore (the embedded
// store), artifact (artifact storage and path confinement) and api (the
// MLflow REST handlers).
package tracking
