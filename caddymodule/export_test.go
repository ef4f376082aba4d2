package caddymodule

// DBReferences exposes the pool's reference count to the external tests.
var DBReferences = dbReferences

// The tests hash passwords at bcrypt's minimum cost: the authorization
// matrix sends hundreds of wrong passwords, each a full bcrypt comparison.
func init() { bcryptCost = 4 }
