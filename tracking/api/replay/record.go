package replay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"
)

// StepPath is the path a scenario posts its next step's label to (the
// body is the label). The Recorder keeps the label for the exchanges that
// follow and neither forwards nor records that request.
const StepPath = "/__step"

// RecordedHeaders are the request headers a Recorder keeps (lower-cased in
// the transcript) and Replay sends back: the content type and the
// experiment an OTLP export names. Credentials are never recorded.
var RecordedHeaders = []string{"Content-Type", "X-Mlflow-Experiment-Id"}

// Recorder is a reverse proxy that forwards every request to Upstream and
// appends one transcript line per exchange to Out, in the format Load
// reads: the path and query exactly as sent, RecordedHeaders, and bodies
// as JSON (a JSON content type with a valid body), text (other valid
// UTF-8 that is not protobuf) or base64. Exchanges are serialized (one at
// a time), so seq is the order the server saw them in.
type Recorder struct {
	Upstream *url.URL
	Out      io.Writer
	// Client forwards the requests (default: one that follows no
	// redirects, so that they are recorded as answered).
	Client *http.Client

	mu   sync.Mutex
	seq  int
	step string
	err  error
}

// Err returns the first error writing to Out (the exchanges after it were
// forwarded but not recorded).
func (rec *Recorder) Err() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.err
}

// recordedLine is one transcript line as written (Exchange with bodies
// that marshal as JSON values).
type recordedLine struct {
	Seq          int               `json:"seq"`
	Step         string            `json:"step"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Query        string            `json:"query"`
	ReqHeaders   map[string]string `json:"req_headers"`
	ReqBodyKind  string            `json:"req_body_kind"`
	ReqBody      any               `json:"req_body"`
	Status       int               `json:"status"`
	RespHeaders  map[string]string `json:"resp_headers"`
	RespBodyKind string            `json:"resp_body_kind"`
	RespBody     any               `json:"resp_body"`
}

// recordBody classifies a body for the transcript.
func recordBody(contentType string, b []byte) (string, any) {
	if len(b) == 0 {
		return "none", nil
	}
	mt := mediaType(contentType)
	if strings.Contains(mt, "json") && json.Valid(b) {
		return "json", json.RawMessage(b)
	}
	if !strings.Contains(mt, "protobuf") && utf8.Valid(b) && !bytes.ContainsRune(b, 0) {
		return "text", map[string]string{"text": string(b)}
	}
	return "base64", map[string]string{"base64": base64.StdEncoding.EncodeToString(b)}
}

// ServeHTTP forwards and records one exchange.
func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqBody, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if r.URL.Path == StepPath {
		rec.step = string(reqBody)
		return
	}
	path, query, _ := strings.Cut(r.RequestURI, "?")
	out, err := http.NewRequestWithContext(r.Context(), r.Method, rec.Upstream.String(), bytes.NewReader(reqBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.URL = &url.URL{Scheme: rec.Upstream.Scheme, Host: rec.Upstream.Host,
		Opaque: strings.TrimRight(rec.Upstream.EscapedPath(), "/") + path, RawQuery: query}
	out.Header = r.Header.Clone()
	out.ContentLength = int64(len(reqBody))
	client := rec.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)

	rec.seq++
	l := recordedLine{Seq: rec.seq, Step: rec.step, Method: r.Method, Path: path, Query: query,
		ReqHeaders: map[string]string{}, Status: resp.StatusCode, RespHeaders: map[string]string{}}
	for _, h := range RecordedHeaders {
		if v := r.Header.Get(h); v != "" {
			l.ReqHeaders[strings.ToLower(h)] = v
		}
	}
	if v := resp.Header.Get("Content-Type"); v != "" {
		l.RespHeaders["content-type"] = v
	}
	l.ReqBodyKind, l.ReqBody = recordBody(r.Header.Get("Content-Type"), reqBody)
	l.RespBodyKind, l.RespBody = recordBody(resp.Header.Get("Content-Type"), respBody)
	if rec.err != nil {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		rec.err = fmt.Errorf("encoding transcript line %d: %w", l.Seq, err)
		return
	}
	if _, err := rec.Out.Write(buf.Bytes()); err != nil {
		rec.err = fmt.Errorf("writing transcript line %d: %w", l.Seq, err)
	}
}
