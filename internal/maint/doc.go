// Package maint holds the logic of the store maintenance commands
// (`caddy mlflow backup`, `gc`, `compact`) apart from Caddy: garbage
// collection with MLflow's `mlflow gc` rules over a
// tracking.GarbageCollector and an artifact store, and backup targets
// (local files and gs:// objects). The caddymodule package only parses
// flags and chooses between the running server (admin API) and the file.
package maint
