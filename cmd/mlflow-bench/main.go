// Command mlflow-bench is a load generator for an MLflow tracking server
// (caddy-mlflow or any other) on the loopback interface.
//
//	mlflow-bench -url http://127.0.0.1:5000 -op log-batch,search-runs -c 16 -d 10s
//	mlflow-bench -url http://127.0.0.1:5000 -op raw -raw-url http://127.0.0.1:5001/ -n 100000
//
// Operations (-op, comma-separated, or "all" for every MLflow operation):
//
//	raw          GET -raw-url (default <url>/health); a ceiling for the HTTP stack
//	log-batch    runs/log-batch with 10 metrics to one pre-created run per client
//	create-run   runs/create in one experiment, start_time the current time (as
//	             MLflow's client sends it)
//	search-runs  runs/search with a metric filter and order_by, max_results 100,
//	             over 10,000 runs seeded with metrics score and loss and param
//	             lr (-seed-runs; -reuse-seed keeps them for the next invocation)
//	search-runs-issue
//	             the same runs searched with issue 14's filtered and ordered
//	             query: metrics.loss < 0.5 and params.lr = '3', order by
//	             metrics.loss DESC, max_results 100
//	get-history  metrics/get-history of a 100,000-point metric seeded via log-batch
//	             (-history-points); one request = the full history
//	get-run      runs/get, round robin over 100 runs (-get-runs) with 10
//	             params, 10 tags and 10 metrics each
//
// Credentials come from the environment variables MLflow's clients read:
// MLFLOW_TRACKING_TOKEN (sent as Bearer), or MLFLOW_TRACKING_USERNAME and
// MLFLOW_TRACKING_PASSWORD (Basic, which wins when both are set, as in
// MLflow's client). Without them requests carry no credentials.
//
// Seeding runs before each measured phase and is reported separately. The
// table gives, per operation: requests, successful req/s, p50, p99, errors.
// When both raw and log-batch ran, log-batch req/s as a fraction of raw is
// printed too.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/loadtest"
)

func main() {
	var cfg loadtest.Config
	var ops string
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:5000", "tracking server base URL (loopback only)")
	flag.StringVar(&cfg.RawURL, "raw-url", "", "URL for -op raw (default <url>/health)")
	flag.StringVar(&ops, "op", loadtest.OpLogBatch, "operations, comma-separated: raw, "+strings.Join(loadtest.Ops, ", ")+", or all")
	flag.IntVar(&cfg.Concurrency, "c", 8, "concurrent clients")
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration per operation (when -n is 0)")
	flag.IntVar(&cfg.Requests, "n", 0, "measured requests per operation (overrides -d)")
	flag.IntVar(&cfg.SeedRuns, "seed-runs", 10000, "runs seeded for search-runs and search-runs-issue")
	flag.BoolVar(&cfg.ReuseSeed, "reuse-seed", false, "keep the search runs in experiment bench-search-<seed-runs> and reuse them when an earlier invocation seeded it completely")
	flag.IntVar(&cfg.HistoryPoints, "history-points", 100000, "metric points seeded for get-history")
	flag.IntVar(&cfg.MetricsPerBatch, "batch-metrics", 10, "metrics per log-batch request")
	flag.IntVar(&cfg.GetRunSeed, "get-runs", 100, "runs seeded for get-run")
	flag.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback targets")
	flag.Parse()

	cfg.Authorization = authorization()

	var list []string
	for _, op := range strings.Split(ops, ",") {
		op = strings.TrimSpace(op)
		switch op {
		case "":
		case "all":
			list = append(list, loadtest.Ops...)
		default:
			list = append(list, op)
		}
	}
	if len(list) == 0 {
		fmt.Fprintln(os.Stderr, "mlflow-bench: no operation given (-op)")
		os.Exit(2)
	}

	r, err := loadtest.NewRunner(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mlflow-bench:", err)
		os.Exit(2)
	}
	defer r.Close()
	r.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	mode := fmt.Sprintf("%v per op", cfg.Duration)
	if cfg.Requests > 0 {
		mode = fmt.Sprintf("%d requests per op", cfg.Requests)
	}
	fmt.Printf("target %s, %d clients, %s\n\n", cfg.URL, cfg.Concurrency, mode)

	var results []loadtest.Result
	failed := false
	for _, op := range list {
		res, err := r.Run(ctx, op)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mlflow-bench:", err)
			failed = true
			if ctx.Err() != nil {
				break
			}
			continue
		}
		results = append(results, res)
	}
	loadtest.PrintTable(os.Stdout, results)
	if f, ok := loadtest.Ratio(results, loadtest.OpLogBatch, loadtest.OpRaw); ok {
		fmt.Printf("\nlog-batch req/s = %.1f%% of raw (%s)\n", 100*f, rawTarget(cfg))
	}
	for _, res := range results {
		if res.Errors > 0 {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// authorization builds the Authorization header from MLflow's client
// variables (Basic wins over a token, as in mlflow.utils.rest_utils).
func authorization() string {
	user, pass := os.Getenv("MLFLOW_TRACKING_USERNAME"), os.Getenv("MLFLOW_TRACKING_PASSWORD")
	if user != "" && pass != "" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	if tok := os.Getenv("MLFLOW_TRACKING_TOKEN"); tok != "" {
		return "Bearer " + tok
	}
	return ""
}

func rawTarget(cfg loadtest.Config) string {
	if cfg.RawURL != "" {
		return cfg.RawURL
	}
	return strings.TrimRight(cfg.URL, "/") + "/health"
}
