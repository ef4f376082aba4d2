// Command caddy is Caddy with the standard modules and the MLflow tracking
// server module (http.handlers.mlflow, Caddyfile directive mlflow).
//
//	go run ./cmd/caddy run --config Caddyfile.example
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-mlflow/caddy-mlflow/caddymodule"
)

func main() { caddycmd.Main() }
