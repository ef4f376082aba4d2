package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

func init() {
	caddy.RegisterModule(maintAdminAPI{})
}

// maintAdminAPI is the admin.api.mlflow_maint module: the routes that let
// `caddy mlflow backup` and `caddy mlflow gc` work on the store of a
// running server, which holds the bbolt file lock. Like every admin route
// it is only as reachable as the admin endpoint (local by default).
//
//   - POST /mlflow/backup {"store": path}: the response body is a
//     consistent snapshot of the database (one read transaction), with its
//     Content-Length. The server never writes a file: the CLI receives the
//     stream and writes, verifies and renames it with its own permissions.
//   - POST /mlflow/gc {"store", "op", "id"}: one tracking.GarbageCollector
//     call; the answer is {"result": ...} or MLflow's
//     {"error_code", "message"}.
//   - POST /mlflow/import {"store", "from", ...}: an MLflow import into the
//     running handler's store and artifact directory, answered with
//     newline-delimited JSON progress and the report (maint_import.go).
type maintAdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (maintAdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.mlflow_maint",
		New: func() caddy.Module { return new(maintAdminAPI) },
	}
}

// gcRequest is the body of /mlflow/gc.
type gcRequest struct {
	Store string `json:"store"`
	Op    string `json:"op"`
	ID    string `json:"id,omitempty"`
}

// gcAnswer is the answer of /mlflow/gc.
type gcAnswer struct {
	Result    json.RawMessage `json:"result,omitempty"`
	ErrorCode string          `json:"error_code,omitempty"`
	Message   string          `json:"message,omitempty"`
}

// runningDB returns the open database of a running handler at the
// absolute path, or nil.
func runningDB(path string) *bolt.DB {
	var db *bolt.DB
	dbPool.Range(func(key, value any) bool {
		if key == path {
			if s, ok := value.(*sharedDB); ok {
				db = s.db
			}
			return false
		}
		return true
	})
	return db
}

// maintStores caches one boltstore.Store per open database, so admin calls
// do not re-initialise the store each time.
var (
	maintStoresMu sync.Mutex
	maintStores   = map[*bolt.DB]*boltstore.Store{}
)

func maintStore(path string) (*boltstore.Store, error) {
	db := runningDB(path)
	if db == nil {
		return nil, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no running mlflow handler uses the store %s", path)}
	}
	maintStoresMu.Lock()
	defer maintStoresMu.Unlock()
	if s := maintStores[db]; s != nil {
		return s, nil
	}
	live := map[*bolt.DB]bool{} // forget databases closed since
	dbPool.Range(func(_, value any) bool {
		if s, ok := value.(*sharedDB); ok {
			live[s.db] = true
		}
		return true
	})
	for old := range maintStores {
		if !live[old] {
			delete(maintStores, old)
		}
	}
	s, err := boltstore.OpenDB(db)
	if err != nil {
		return nil, err
	}
	maintStores[db] = s
	return s, nil
}

func decodeAdmin(r *http.Request, v any) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("decoding request: %w", err)}
	}
	return nil
}

// Routes returns the admin routes.
func (maintAdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/mlflow/backup", Handler: caddy.AdminHandlerFunc(serveBackup)},
		{Pattern: "/mlflow/gc", Handler: caddy.AdminHandlerFunc(serveGC)},
		{Pattern: "/mlflow/import", Handler: caddy.AdminHandlerFunc(serveImport)}, // maint_import.go
	}
}

func serveBackup(w http.ResponseWriter, r *http.Request) error {
	var req adminRequest
	if err := decodeAdmin(r, &req); err != nil {
		return err
	}
	db := runningDB(req.Store)
	if db == nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no running mlflow handler uses the store %s", req.Store)}
	}
	started := false
	info, err := boltstore.Snapshot(r.Context(), db, w, func(info boltstore.SnapshotInfo) error {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.Header().Set("X-Mlflow-Snapshot-Txid", strconv.Itoa(info.TxID))
		w.WriteHeader(http.StatusOK)
		started = true
		return nil
	})
	log := caddy.Log().Named("mlflow.backup")
	observeBackup(info.Size, err) // metrics.go
	if err != nil {
		if !started {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		// The client sees a short body and discards the copy.
		log.Error("snapshot stream failed", zap.String("store", req.Store), zap.Error(err))
		return nil
	}
	log.Info("snapshot streamed", zap.String("store", req.Store), zap.Int64("bytes", info.Size), zap.Int("txid", info.TxID))
	return nil
}

func serveGC(w http.ResponseWriter, r *http.Request) error {
	var req gcRequest
	if err := decodeAdmin(r, &req); err != nil {
		return err
	}
	s, err := maintStore(req.Store)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out any
	switch req.Op {
	case "deleted_runs":
		out, err = s.DeletedRuns(ctx)
	case "deleted_experiments":
		out, err = s.DeletedExperiments(ctx)
	case "run":
		out, err = s.GCRun(ctx, req.ID)
	case "experiment":
		out, err = s.GCExperiment(ctx, req.ID)
	case "experiment_runs":
		out, err = s.ExperimentRuns(ctx, req.ID)
	case "hard_delete_run":
		err = s.HardDeleteRun(ctx, req.ID)
		if err == nil {
			caddy.Log().Named("mlflow.gc").Info("run permanently deleted", zap.String("run_id", req.ID))
		}
	case "hard_delete_experiment":
		err = s.HardDeleteExperiment(ctx, req.ID)
		if err == nil {
			caddy.Log().Named("mlflow.gc").Info("experiment permanently deleted", zap.String("experiment_id", req.ID))
		}
	default:
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("unknown gc operation %q", req.Op)}
	}
	var ans gcAnswer
	if te, ok := tracking.AsError(err); ok {
		ans.ErrorCode, ans.Message = string(te.Code), te.Message
	} else if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
	} else if out != nil {
		if ans.Result, err = json.Marshal(out); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(ans)
}

var _ caddy.AdminRouter = (*maintAdminAPI)(nil)
