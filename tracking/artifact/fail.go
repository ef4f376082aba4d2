package artifact

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// fail answers err with WriteError. What the client will not see (a
// failure answered as a generic 500) goes to the handler's logger, unless
// the client went away.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if _, ok := tracking.AsError(err); !ok && !IsNotFound(err) && h.opts.Logger != nil &&
		r.Context().Err() == nil {
		h.opts.Logger.Error("artifact request failed",
			zap.String("method", r.Method), zap.String("uri", r.RequestURI), zap.Error(err))
	}
	WriteError(w, err)
}
