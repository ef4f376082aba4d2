// Package tlsutil holds the TLS building blocks of the security gateway that
// do not depend on MLflow or Caddy: loading CA pools that fail closed, and
// mapping a verified client certificate to a username.
//
// Every loader refuses input it cannot fully use. A CA file that is missing,
// empty, or contains no PEM certificate is an error, never an empty pool:
// an empty pool silently accepted at start-up is how mTLS fails open
// (CVE-2026-27586 in Caddy's own client_auth).
package tlsutil
