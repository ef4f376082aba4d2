package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
)

// cliLockWait is how long the CLI waits for the bbolt lock before deciding
// that a server holds it and going through the admin API instead.
const cliLockWait = 300 * time.Millisecond

func init() {
	fs := flag.NewFlagSet("mlflow", flag.ExitOnError)
	fs.String("config", "", "Caddyfile or JSON config naming the mlflow store (default: ./Caddyfile)")
	fs.String("adapter", "", "config adapter (default: caddyfile for Caddyfile names)")
	fs.String("address", "", "admin API address of the running server (default: from the config)")
	fs.String("backend_store_uri", "", "the store to use when the config has several mlflow handlers")
	fs.String("user", "", "the user a token belongs to")
	fs.String("expires", "", "token lifetime, e.g. 720h (default: none)")
	fs.String("name", "", "a label for the token")
	fs.Bool("admin", false, "user add: make the user an admin")
	addCopyStoreFlags(fs)
	addMaintFlags(fs)  // maint_cli.go
	addImportFlags(fs) // import_cli.go
	addExportFlags(fs) // export_cli.go
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mlflow",
		Usage: "user add <name> | token create --user <name> [--expires 720h] | token list [--user <name>] | token revoke <id> [--user <name>]" + maintUsage + "  [--config <Caddyfile>] | " + copyStoreUsage + " | " + importUsage + " | " + exportUsage,
		Short: "Manages users and API tokens of the MLflow tracking server",
		Long: `
Manages the users and API tokens in the bbolt store of the mlflow handler
named by --config. While a server runs (it holds the file lock), the
command goes through Caddy's admin API (the config's admin address); with
no server running it opens the store directly. It never waits on the lock
for more than a moment.

  caddy mlflow user add --config Caddyfile alice          (password from stdin)
  caddy mlflow token create --config Caddyfile --user alice --expires 720h
  caddy mlflow token list --config Caddyfile [--user alice]
  caddy mlflow token revoke --config Caddyfile <id>

With a PostgreSQL backend_store_uri the command works on the database
directly, whether servers run or not; every replica sees the change on
its next request.

Relative store paths resolve against the current directory, as they do
for the server: run the command where the server was started.

  caddy mlflow copy-store --from ./mlflow.bolt --to postgresql://user@host/db

copies every record of one store into another (bbolt files and
PostgreSQL databases, either way), ids, timestamps, full metric
histories, the registry and the gateway's users, tokens and grants
included, then reads the destination back and compares the counts of
every kind of record (non-zero exit on a mismatch). The destination must
be empty unless --force; a bbolt store must not be in use by a server.` + maintLong + exportLong,
		Flags: fs,
		Func:  cmdMLflow,
	})
}

// cliTarget is where the CLI's operations go.
type cliTarget struct {
	pgURI     string // a PostgreSQL backend: the CLI works on the database directly
	storePath string
	adminAddr string // "" when the admin API is off
	cfgFile   string
}

func cmdMLflow(fl caddycmd.Flags) (int, error) {
	args := fl.Args()
	if len(args) > 0 && maintCommands[args[0]] != nil {
		return maintCommands[args[0]](fl) // maint_cli.go
	}
	if len(args) > 0 && args[0] == "copy-store" {
		return cmdCopyStore(fl)
	}
	if len(args) > 0 && args[0] == "import" {
		return cmdImport(fl)
	}
	if len(args) > 0 && args[0] == "export" {
		return cmdExport(fl) // export_cli.go
	}
	if len(args) < 2 {
		return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow user add <name> | token create|list|revoke ...")
	}
	t, err := resolveCLITarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	op := args[0] + " " + args[1]
	rest := args[2:]
	req := adminRequest{Store: t.storePath, Username: fl.String("user"), Name: fl.String("name"), Expires: fl.String("expires")}
	switch op {
	case "user add":
		if len(rest) != 1 {
			return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow user add <name> (password on stdin)")
		}
		req.Username, req.Admin = rest[0], fl.Bool("admin")
		pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("reading the password from stdin: %w", err)
		}
		pw = strings.TrimRight(pw, "\r\n")
		if len([]rune(pw)) < MinPasswordLength {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("the password must be at least %d characters", MinPasswordLength)
		}
		hash, err := hashPassword(pw)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		req.PasswordHash = string(hash)
		if _, err := t.do("/mlflow/users/add", req); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Fprintf(os.Stderr, "user %s added\n", req.Username)
	case "token create":
		if req.Username == "" {
			return caddy.ExitCodeFailedStartup, errors.New("token create needs --user")
		}
		out, err := t.do("/mlflow/tokens/create", req)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Println(out["token"]) // only the token, once
	case "token list":
		out, err := t.do("/mlflow/tokens/list", req)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tNAME\tCREATED\tEXPIRES\tREVOKED")
		list, _ := out["tokens"].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			str := func(k string) string { s, _ := m[k].(string); return s }
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", str("id"), str("username"), str("name"), str("created"), str("expires_at"), m["revoked"] == true)
		}
		_ = tw.Flush()
	case "token revoke":
		if len(rest) != 1 {
			return caddy.ExitCodeFailedStartup, errors.New("usage: caddy mlflow token revoke <id>")
		}
		req.ID = rest[0]
		if _, err := t.do("/mlflow/tokens/revoke", req); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Fprintf(os.Stderr, "token %s revoked\n", req.ID)
	default:
		return caddy.ExitCodeFailedStartup, fmt.Errorf("unknown command %q", op)
	}
	return caddy.ExitCodeSuccess, nil
}

// resolveCLITarget loads the config, finds the mlflow store and the admin
// address.
func resolveCLITarget(fl caddycmd.Flags) (*cliTarget, error) {
	cfgFile := fl.String("config")
	cfg, loaded, _, err := caddycmd.LoadConfig(cfgFile, fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("loading the config: %w", err)
	}
	if len(cfg) == 0 {
		return nil, errors.New("no config: use --config <Caddyfile>")
	}
	uri := fl.String("backend_store_uri")
	if uri == "" {
		var stores []string
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if x["handler"] == "mlflow" {
					s, _ := x["backend_store_uri"].(string)
					stores = append(stores, s)
				}
				for _, c := range x {
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		var root any
		if err := json.Unmarshal(cfg, &root); err != nil {
			return nil, fmt.Errorf("reading the config: %w", err)
		}
		walk(root)
		switch {
		case len(stores) == 0:
			return nil, errors.New("the config has no mlflow handler")
		case len(stores) > 1:
			for _, s := range stores[1:] {
				if s != stores[0] {
					return nil, errors.New("the config has several mlflow handlers; choose one with --backend_store_uri")
				}
			}
		}
		uri = stores[0]
	}
	if pg := caddy.NewReplacer().ReplaceKnown(uri, ""); pgdb.IsURI(pg) {
		// Every replica reads the database on each request, so a change
		// made here takes effect at once; no admin API is needed.
		return &cliTarget{pgURI: pg, cfgFile: loaded}, nil
	}
	path, err := ResolveBackendStoreURI(uri)
	if err != nil {
		return nil, err
	}
	t := &cliTarget{storePath: path, cfgFile: loaded}
	var admin struct {
		Admin struct {
			Disabled bool `json:"disabled"`
		} `json:"admin"`
	}
	_ = json.Unmarshal(cfg, &admin)
	if !admin.Admin.Disabled || fl.String("address") != "" {
		if t.adminAddr, err = caddycmd.DetermineAdminAPIAddress(fl.String("address"), cfg, loaded, fl.String("adapter")); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// do runs one operation: on the store directly when no process holds it,
// else through the admin API.
func (t *cliTarget) do(route string, req adminRequest) (map[string]any, error) {
	if t.pgURI != "" {
		return t.doPG(route, req)
	}
	db, err := bolt.Open(t.storePath, 0o600, &bolt.Options{Timeout: cliLockWait})
	switch {
	case err == nil:
		defer db.Close()
		return t.directBolt(db, route, req)
	case !errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("opening the store %s: %w", t.storePath, err)
	}
	if t.adminAddr == "" {
		return nil, fmt.Errorf("the store %s is in use (a server is running?) and the config's admin API is off; enable `admin` or stop the server", t.storePath)
	}
	body, _ := json.Marshal(req)
	resp, err := caddycmd.AdminAPIRequest(t.adminAddr, http.MethodPost, route, nil, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the store is in use; asking the running server at %s: %w", t.adminAddr, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the admin API answer: %w", err)
	}
	return out, nil
}

// doPG runs one operation on the gateway tables of a PostgreSQL backend.
func (t *cliTarget) doPG(route string, req adminRequest) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgdb.Open(ctx, t.pgURI, pgdb.Options{MaxConns: 2, ApplicationName: "caddy-mlflow-cli"})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	s, err := pgAuthStore(ctx, pool) // authstore_open.go
	if err != nil {
		return nil, err
	}
	return t.direct(ctx, s, route, req)
}

// directBolt performs route's operation on an opened bbolt store.
func (t *cliTarget) directBolt(db *bolt.DB, route string, req adminRequest) (map[string]any, error) {
	s, err := boltauth.New(db)
	if err != nil {
		return nil, err
	}
	return t.direct(context.Background(), s, route, req)
}

// direct performs route's operation on the gateway's store.
func (t *cliTarget) direct(ctx context.Context, s authstore.Store, route string, req adminRequest) (map[string]any, error) {
	var err error
	switch route {
	case "/mlflow/users/add":
		_, err := s.CreateUser(ctx, req.Username, []byte(req.PasswordHash), req.Admin)
		return map[string]any{}, err
	case "/mlflow/tokens/create":
		var ttl time.Duration
		if req.Expires != "" {
			if ttl, err = caddy.ParseDuration(req.Expires); err != nil {
				return nil, fmt.Errorf("--expires: %w", err)
			}
		}
		tok, _, err := s.CreateToken(ctx, req.Username, req.Name, ttl)
		return map[string]any{"token": tok}, err
	case "/mlflow/tokens/list":
		ts, err := s.ListTokens(ctx, req.Username)
		list := make([]any, 0, len(ts))
		for _, tk := range ts {
			b, _ := json.Marshal(tokenInfo(tk))
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			list = append(list, m)
		}
		return map[string]any{"tokens": list}, err
	case "/mlflow/tokens/revoke":
		return map[string]any{}, s.RevokeToken(ctx, req.Username, req.ID)
	}
	return nil, fmt.Errorf("unknown operation %s", route)
}
