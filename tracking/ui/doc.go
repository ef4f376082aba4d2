// Package ui serves the tracking UI: an HTML shell, our own small ES-module
// JavaScript and CSS, all embedded with go:embed, so the server needs no CDN
// and no network at run time.
//
// The UI is a client of the /ajax-api routes and holds no data of its own:
// every page asks the REST API, which the gateway authenticates and
// authorizes like any other client, so a page can show only what its viewer
// may read. The package knows nothing about Caddy or about how viewers are
// authenticated; the embedder tells it who is looking through
// Options.Viewer.
//
// Deep links are stable: /experiments/<experiment_id>,
// /experiments/<experiment_id>/runs/<run_id>,
// /experiments/<experiment_id>/traces[/<trace_id>] and
// /experiments/<experiment_id>/models[/<model_id>], /models/<name> and
// /prompts/<name> (see Handler.Owns for
// the full list of page paths). Every page path answers the same shell, and the
// router in static/lib.js renders the page.
package ui
