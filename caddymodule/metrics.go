package caddymodule

// Prometheus metrics for operators, exposed through Caddy's own metrics
// registry: the admin endpoint's /metrics and the metrics handler serve
// them next to Caddy's caddy_http_* series.
//
// The collectors are process-wide and are registered in the registry of
// every config that provisions an mlflow handler. A config reload gets a
// fresh registry from Caddy, in which the same collectors are registered
// again, so counters keep counting across reloads instead of starting
// over; several mlflow handlers in one config register them once (the
// registry reports the second registration as the collector it already
// has). Every label has a bounded set of values: routes are the MLflow
// operation names of the route table (never raw paths), reasons a fixed
// list, databases the configured bbolt files.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/pgstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/ui"
)

const metricsNamespace = "caddy_mlflow"

// Route labels of requests that match no route of the table.
const (
	routeUI     = "UI"     // the tracking UI's pages and assets
	routeLogin  = "Login"  // POST /login of the gateway (auth on)
	routeLogout = "Logout" // /logout of the gateway (auth on)
	routeOther  = "other"  // anything else (404, 405, OPTIONS, redirects)
)

// Reasons of caddy_mlflow_auth_failures_total the gateway adds to those
// of authn.FailureReason.
const (
	reasonForbidden       = "forbidden"        // authenticated, not authorized (403)
	reasonUntrustedClient = "untrusted_client" // client certificate outside trust_pool
)

// promMetrics are the process-wide collectors.
type promMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	commitLatency prometheus.Histogram
	commitBatch   prometheus.Histogram
	artifactBytes *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	bolt          *boltCollector
	pgTxDuration  *prometheus.HistogramVec
	pgTxRetries   *prometheus.CounterVec
	pg            *pgCollector

	// Operations run through the admin API (maint_admin.go,
	// maint_import.go).
	importRecords     *prometheus.CounterVec
	importBytes       prometheus.Counter
	backups           *prometheus.CounterVec
	backupBytes       prometheus.Counter
	backupLastSuccess prometheus.Gauge
}

// metrics are this process's collectors.
var metrics = newPromMetrics()

// authFailureReasons are every reason label of auth_failures_total.
var authFailureReasons = []string{
	authn.ReasonMissingCredentials, authn.ReasonBadCredentials, authn.ReasonUnknownUser,
	authn.ReasonBadPassword, authn.ReasonUserDisabled, authn.ReasonTokenExpired,
	authn.ReasonTokenRevoked, authn.ReasonBadToken, authn.ReasonJWTExpired, authn.ReasonBadJWT,
	authn.ReasonSessionExpired, authn.ReasonBadSession, authn.ReasonBadCertificate,
	reasonUntrustedClient, reasonForbidden,
}

// newPromMetrics makes the collectors, with the series of the fixed label
// values (artifact directions, auth failure reasons) at zero, so that
// they are exposed, and rate() works, before the first event.
func newPromMetrics() *promMetrics {
	m := newCollectors()
	for _, dir := range []string{"in", "out"} {
		m.artifactBytes.WithLabelValues(dir)
	}
	for _, r := range authFailureReasons {
		m.authFailures.WithLabelValues(r)
	}
	for _, k := range (storecopy.Counts{}).Kinds() {
		m.importRecords.WithLabelValues(k.Name)
	}
	for _, r := range []string{"ok", "failed"} {
		m.backups.WithLabelValues(r)
	}
	return m
}

func newCollectors() *promMetrics {
	return &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "requests_total",
			Help:      "MLflow server requests answered, by route (MLflow operation name) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "request_duration_seconds",
			Help:      "Time to answer MLflow server requests, by route (MLflow operation name).",
			Buckets:   prometheus.DefBuckets,
		}, []string{"route"}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "store_commit_duration_seconds",
			Help:      "Duration of committed bbolt write transactions (one per group commit), fsync included.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "store_commit_batch_size",
			Help:      "Write calls committed together in one bbolt group commit.",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 8), // 1 .. 128
		}),
		artifactBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "artifact_bytes_total",
			Help:      "Artifact bytes through the artifact proxy: direction=\"in\" read from uploads, \"out\" sent in successful downloads.",
		}, []string{"direction"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "auth_failures_total",
			Help:      "Requests the gateway refused, by reason.",
		}, []string{"reason"}),
		bolt: newBoltCollector(),
		pgTxDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "pg_transaction_duration_seconds",
			Help:      "Duration of committed PostgreSQL transactions, by operation (create_run, log_batch, ...), retries included.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}, []string{"operation"}),
		pgTxRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "pg_transaction_retries_total",
			Help:      "PostgreSQL transactions run again after a serialization failure or deadlock, by operation.",
		}, []string{"operation"}),
		pg: newPGCollector(),
		importRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "import_records_total",
			Help:      "Records written by `caddy mlflow import` run through the server's admin API, by kind (experiments, runs, metric_points, ...).",
		}, []string{"kind"}),
		importBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "import_bytes_total",
			Help:      "Artifact bytes done by `caddy mlflow import` run through the server's admin API (copied, or found already there and skipped).",
		}),
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "backups_total",
			Help:      "Snapshots streamed to `caddy mlflow backup` through the admin API, by result (ok, failed).",
		}, []string{"result"}),
		backupBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "backup_bytes_total",
			Help:      "Snapshot bytes streamed to `caddy mlflow backup` through the admin API.",
		}),
		backupLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "backup_last_success_timestamp_seconds",
			Help:      "Unix time at which the last snapshot streamed through the admin API completed (0: none since the process started).",
		}),
	}
}

func (m *promMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.commitLatency, m.commitBatch, m.artifactBytes, m.authFailures, m.bolt,
		m.pgTxDuration, m.pgTxRetries, m.pg,
		m.importRecords, m.importBytes, m.backups, m.backupBytes, m.backupLastSuccess}
}

// register registers the collectors in reg. A collector reg already has
// (another mlflow handler of the same config registered it) is fine.
func (m *promMetrics) register(reg prometheus.Registerer) error {
	for _, c := range m.collectors() {
		err := reg.Register(c)
		var dup prometheus.AlreadyRegisteredError
		if err == nil || (errors.As(err, &dup) && dup.ExistingCollector == c) {
			continue
		}
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}

// ObserveCommit implements boltstore.CommitObserver.
func (m *promMetrics) ObserveCommit(calls int, d time.Duration) {
	m.commitLatency.Observe(d.Seconds())
	m.commitBatch.Observe(float64(calls))
}

// ObserveTx implements pgstore.TxObserver.
func (m *promMetrics) ObserveTx(op string, attempts int, d time.Duration, committed bool) {
	if attempts > 1 {
		m.pgTxRetries.WithLabelValues(op).Add(float64(attempts - 1))
	}
	if committed {
		m.pgTxDuration.WithLabelValues(op).Observe(d.Seconds())
	}
}

// provisionMetrics registers the collectors in the config's registry and
// makes the store report its commits. A handler provisioned without a
// registry (outside a Caddy config) still counts, unexported.
func (h *Handler) provisionMetrics(ctx caddy.Context) error {
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		if err := metrics.register(reg); err != nil {
			return err
		}
	}
	if h.store != nil {
		h.store.SetCommitObserver(metrics)
	}
	if h.pg != nil {
		if s, ok := h.pg.store.(*pgstore.Store); ok {
			s.SetTxObserver(metrics)
		}
	}
	if s, ok := h.api.(*slashRedirect); ok {
		h.routes = s.matcher
	}
	return nil
}

// observeRequest starts measuring a request. It returns the writer and
// request to serve it with and a function to call once it is answered.
func (h *Handler) observeRequest(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func()) {
	start := time.Now()
	route := h.routeLabel(r)
	mw := &meteredWriter{ResponseWriter: w}
	var in *countingBody
	switch route {
	case "UploadArtifact":
		if r.Body != nil && r.Body != http.NoBody {
			in = &countingBody{ReadCloser: r.Body}
			r.Body = in
		}
	case "DownloadArtifact", "GetArtifact", "GetModelVersionArtifact":
		mw.countBody = true
	}
	return mw, r, func() {
		status := mw.status
		if status == 0 {
			status = http.StatusOK
		}
		metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if in != nil && in.n > 0 {
			metrics.artifactBytes.WithLabelValues("in").Add(float64(in.n))
		}
		if mw.countBody && status < 300 && mw.bytes > 0 {
			metrics.artifactBytes.WithLabelValues("out").Add(float64(mw.bytes))
		}
	}
}

// routeLabel names the route of r for metrics: the MLflow operation name
// of the matched route, or one of the route* constants.
func (h *Handler) routeLabel(r *http.Request) string {
	p := r.URL.Path
	if h.auth != nil { // as gateway.sessionRoute, which runs before the UI
		switch {
		case p == "/login" && r.Method != http.MethodGet && r.Method != http.MethodHead:
			return routeLogin
		case p == "/logout":
			return routeLogout
		}
	}
	if h.ui != nil && ui.Owns(p) {
		return routeUI
	}
	if h.routes != nil {
		if m, ok, _ := h.routes.Match(r.Method, p); ok && m.Route.Name != "" {
			return m.Route.Name
		}
	}
	return routeOther
}

// observeAuth counts a request the gateway refused. It is called with
// every audit record (writeAudit).
func observeAuth(rec *auditRecord, status int) {
	if rec.allowed {
		return
	}
	reason := ""
	switch {
	case rec.authErr != nil:
		reason = authn.FailureReason(rec.authErr) // "" for lookup failures (500)
	case status == http.StatusForbidden:
		reason = reasonForbidden
	case status == http.StatusUnauthorized:
		reason = reasonUntrustedClient // the only 401 without an authn error
	}
	if reason != "" {
		metrics.authFailures.WithLabelValues(reason).Inc()
	}
}

// meteredWriter records the status and, for downloads, the body bytes.
type meteredWriter struct {
	http.ResponseWriter
	status    int
	countBody bool
	bytes     int64
}

// WriteHeader records the status.
func (w *meteredWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and counts the bytes.
func (w *meteredWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy's fast path (sendfile) for artifact downloads.
func (w *meteredWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(w.ResponseWriter, src)
	}
	w.bytes += n
	return n, err
}

// Flush flushes the underlying writer.
func (w *meteredWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush() //nolint:errcheck // best effort, as http.Flusher
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *meteredWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

// Read reads from the body and counts.
func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// boltCollector reports the pooled bbolt databases of this process
// (dbPool) at scrape time.
type boltCollector struct {
	size, free, pending, freeBytes, readTx *prometheus.Desc
}

func newBoltCollector() *boltCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "bbolt", name), help, []string{"db"}, nil)
	}
	return &boltCollector{
		size:      d("file_size_bytes", "Size of the bbolt file on disk."),
		free:      d("free_pages", "Pages on the bbolt freelist, reusable by later writes."),
		pending:   d("pending_pages", "Freed bbolt pages still held by open read transactions."),
		freeBytes: d("free_bytes", "Bytes in free and pending bbolt pages."),
		readTx:    d("open_read_transactions", "Read transactions open on the bbolt database."),
	}
}

// Describe implements prometheus.Collector.
func (c *boltCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.free, c.pending, c.freeBytes, c.readTx} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one series per metric and
// open database, read from db.Stats() and the file's size.
func (c *boltCollector) Collect(ch chan<- prometheus.Metric) {
	var dbs []*sharedDB
	dbPool.Range(func(_, v any) bool {
		if s, ok := v.(*sharedDB); ok {
			dbs = append(dbs, s)
		}
		return true
	})
	sort.Slice(dbs, func(i, j int) bool { return dbs[i].path < dbs[j].path })
	for _, s := range dbs {
		st := s.db.Stats()
		if fi, err := os.Stat(s.path); err == nil {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(fi.Size()), s.path)
		}
		ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(st.FreePageN), s.path)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.PendingPageN), s.path)
		ch <- prometheus.MustNewConstMetric(c.freeBytes, prometheus.GaugeValue, float64(st.FreeAlloc), s.path)
		ch <- prometheus.MustNewConstMetric(c.readTx, prometheus.GaugeValue, float64(st.OpenTxN), s.path)
	}
}

var _ prometheus.Collector = (*boltCollector)(nil)

// importRecorder turns an import's running counts into
// import_records_total increments. A dry run writes nothing and counts
// nothing.
type importRecorder struct {
	mu        sync.Mutex
	dryRun    bool
	last      storecopy.Counts
	lastBytes int64
}

func newImportRecorder(dryRun bool) *importRecorder { return &importRecorder{dryRun: dryRun} }

// observe adds what c has more than the counts seen last.
func (r *importRecorder) observe(c storecopy.Counts) {
	if r.dryRun {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.last.Kinds()
	for i, k := range c.Kinds() {
		if d := k.Value - prev[i].Value; d > 0 {
			metrics.importRecords.WithLabelValues(k.Name).Add(float64(d))
		}
	}
	r.last = c
}

// artifactBytes adds what done (the import's artifact bytes so far) has
// more than seen last.
func (r *importRecorder) artifactBytes(done int64) {
	if r.dryRun {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := done - r.lastBytes; d > 0 {
		metrics.importBytes.Add(float64(d))
		r.lastBytes = done
	}
}

// observeBackup records a snapshot streamed through the admin API.
func observeBackup(bytes int64, err error) {
	if err != nil {
		metrics.backups.WithLabelValues("failed").Inc()
		return
	}
	metrics.backups.WithLabelValues("ok").Inc()
	metrics.backupBytes.Add(float64(bytes))
	metrics.backupLastSuccess.SetToCurrentTime()
}

// pgCollector reports the pooled PostgreSQL connection pools of this
// process (pgPool) at scrape time, labelled with the redacted URI.
type pgCollector struct {
	conns, maxConns, acquires, emptyAcquires, acquireWait *prometheus.Desc
}

func newPGCollector() *pgCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "pg_pool", name), help, append([]string{"db"}, labels...), nil)
	}
	return &pgCollector{
		conns:         d("connections", "Connections of the pool, by state (acquired, idle, constructing).", "state"),
		maxConns:      d("max_connections", "The pool's max_conns."),
		acquires:      d("acquires_total", "Connections acquired from the pool."),
		emptyAcquires: d("empty_acquires_total", "Acquires that had to wait for a connection (none idle)."),
		acquireWait:   d("acquire_wait_seconds_total", "Time spent waiting for a connection of the pool."),
	}
}

// Describe implements prometheus.Collector.
func (c *pgCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.maxConns, c.acquires, c.emptyAcquires, c.acquireWait} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one set of series per pool.
// Two pools of one database with different settings add up under its
// label.
func (c *pgCollector) Collect(ch chan<- prometheus.Metric) {
	type agg struct{ acquired, idle, constructing, max, acquires, empty, wait float64 }
	byDB := map[string]*agg{}
	pgPool.Range(func(_, v any) bool {
		s, ok := v.(*sharedPG)
		if !ok {
			return true
		}
		st := s.pool.Stat()
		a := byDB[s.name]
		if a == nil {
			a = &agg{}
			byDB[s.name] = a
		}
		a.acquired += float64(st.AcquiredConns())
		a.idle += float64(st.IdleConns())
		a.constructing += float64(st.ConstructingConns())
		a.max += float64(st.MaxConns())
		a.acquires += float64(st.AcquireCount())
		a.empty += float64(st.EmptyAcquireCount())
		a.wait += st.AcquireDuration().Seconds()
		return true
	})
	for db, a := range byDB {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, a.acquired, db, "acquired")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, a.idle, db, "idle")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, a.constructing, db, "constructing")
		ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, a.max, db)
		ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, a.acquires, db)
		ch <- prometheus.MustNewConstMetric(c.emptyAcquires, prometheus.CounterValue, a.empty, db)
		ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, a.wait, db)
	}
}

var _ prometheus.Collector = (*pgCollector)(nil)
