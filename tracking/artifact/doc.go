// Package artifact stores MLflow artifacts and serves MLflow's proxied
// artifact service (/api/2.0/mlflow-artifacts/...).
//
// Every path that reaches a store goes through CleanPath (or
// CleanEscapedPath, which does HTTP's one decoding first): the one place
// where artifact paths are put in MLflow's canonical form and confined. Stores sit behind the small
// Store interface so that the HTTP handlers do not know whether they talk to
// local disk or to an object store. A store that can sign URLs (Signer,
// the GCS store) can be wrapped with WithSignedDownloads, so that large
// downloads are answered with a redirect to the object store instead of
// streamed through the server.
package artifact
