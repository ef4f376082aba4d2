package caddymodule

import (
	"io"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"
)

// RunImportCLI runs `caddy mlflow import args...` as the CLI does, in
// this process (offline, or through the admin API when a running server
// holds the store), and returns what it printed on stdout (the report).
func RunImportCLI(args ...string) (string, error) {
	fs := pflag.NewFlagSet("mlflow", pflag.ContinueOnError)
	for _, name := range []string{"config", "adapter", "address", "backend_store_uri", "from", "to", "artifacts-from", "artifacts-to"} {
		fs.String(name, "", "")
	}
	fs.Bool("dry-run", false, "")
	if err := fs.Parse(append([]string{"import"}, args...)); err != nil {
		return "", err
	}
	out, err := os.CreateTemp("", "import-stdout-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	saved := os.Stdout
	os.Stdout = out
	_, runErr := cmdImport(caddycmd.Flags{FlagSet: fs})
	os.Stdout = saved
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(out)
	if err != nil {
		return "", err
	}
	return string(b), runErr
}
