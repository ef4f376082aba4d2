package caddymodule

// DBReferences exposes the pool's reference count to the external tests.
var DBReferences = dbReferences
