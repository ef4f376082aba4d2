package artifact

import (
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// fail answers err with WriteError. What the client will not see (a
// failure answered as a generic 500, or a full disk answered as 507) goes
// to the handler's logger with the request, fields (the artifact path and
// size of a write) and the cause, unless the client went away.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, fields ...zap.Field) {
	if _, ok := tracking.AsError(err); !ok && !IsNotFound(err) && h.opts.Logger != nil &&
		r.Context().Err() == nil {
		msg := "artifact request failed"
		if tracking.IsNoSpace(err) {
			msg = "artifact store full: write refused"
		}
		h.opts.Logger.Error(msg, append([]zap.Field{
			zap.String("method", r.Method), zap.String("uri", r.RequestURI)}, append(fields, zap.Error(err))...)...)
	}
	WriteError(w, err)
}

// countingReader counts the bytes read through it and keeps the first
// read error other than io.EOF (a failure of the client's body).
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
