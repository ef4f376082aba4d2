package mlflowexport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Journal record kinds (the "kind" of each JSON line of the id map).
const (
	// KindDestination is the first line: the server the map is for.
	KindDestination = "destination"
	// KindExperiment maps a source experiment id (old) to the
	// destination's (new).
	KindExperiment = "experiment"
	// KindExperimentDone says every run of the experiment is exported
	// and its lifecycle stage set.
	KindExperimentDone = "experiment_done"
	// KindRun maps a source run id (old) to the destination's (new); it
	// is written as soon as the destination run exists.
	KindRun = "run"
	// KindRunDone says the run is exported whole (data, artifacts,
	// status, lifecycle).
	KindRunDone = "run_done"
	// KindModelVersion maps a version number of registered model Name.
	KindModelVersion = "model_version"
	// KindModelDone says registered model Name is exported whole.
	KindModelDone = "model_done"
)

// Record is one line of the id map file.
type Record struct {
	Kind string `json:"kind"`
	// Old and New are the source and destination ids (or version
	// numbers).
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
	// Experiment is the source experiment of a run.
	Experiment string `json:"experiment,omitempty"`
	// Name is a registered model's name.
	Name string `json:"name,omitempty"`
	// URI is the destination of a KindDestination line.
	URI string `json:"uri,omitempty"`
}

// Journal is the id map file: JSON lines appended (and synced) as the
// export advances, read back on the next run to continue. It is safe
// for concurrent use.
type Journal struct {
	mu          sync.Mutex
	f           *os.File // nil: in memory only (dry run)
	destination string
	exps        map[string]string
	expsDone    map[string]bool
	runs        map[string]string
	runsDone    map[string]bool
	versions    map[string]map[string]string // model -> old -> new
	modelsDone  map[string]bool
}

func newJournal() *Journal {
	return &Journal{
		exps: map[string]string{}, expsDone: map[string]bool{}, runs: map[string]string{},
		runsDone: map[string]bool{}, versions: map[string]map[string]string{}, modelsDone: map[string]bool{},
	}
}

// OpenJournal reads the id map at path (if it exists) and opens it for
// appending. destination is the server exported to: a map written for
// another server is refused. readOnly reads without creating or
// writing (for dry runs).
func OpenJournal(path, destination string, readOnly bool) (*Journal, error) {
	j := newJournal()
	f, err := os.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("the id map %s: %w", path, err)
	default:
		err := j.load(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("the id map %s: %w", path, err)
		}
	}
	if j.destination != "" && j.destination != destination {
		return nil, fmt.Errorf("the id map %s was written for %s, not %s; use another --id-map file", path, j.destination, destination)
	}
	if readOnly {
		return j, nil
	}
	w, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the id map %s: %w", path, err)
	}
	j.f = w
	if err := endLine(path, w); err != nil {
		w.Close()
		return nil, err
	}
	if j.destination == "" {
		if err := j.Append(Record{Kind: KindDestination, URI: destination}); err != nil {
			w.Close()
			return nil, err
		}
	}
	return j, nil
}

// endLine drops a last line a crash cut short (it was never complete,
// so it records nothing), so that the next record starts a line of its
// own.
func endLine(path string, w *os.File) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the id map %s: %w", path, err)
	}
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return nil
	}
	keep := bytes.LastIndexByte(data, '\n') + 1
	if err := w.Truncate(int64(keep)); err != nil {
		return fmt.Errorf("the id map %s: dropping a cut line: %w", path, err)
	}
	return nil
}

func (j *Journal) load(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			// A line cut by a crash can only be the last one.
			if !sc.Scan() {
				break
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
		j.apply(rec)
	}
	return sc.Err()
}

func (j *Journal) apply(r Record) {
	switch r.Kind {
	case KindDestination:
		if j.destination == "" {
			j.destination = r.URI
		}
	case KindExperiment:
		j.exps[r.Old] = r.New
	case KindExperimentDone:
		j.expsDone[r.Old] = true
	case KindRun:
		j.runs[r.Old] = r.New
	case KindRunDone:
		j.runsDone[r.Old] = true
	case KindModelVersion:
		m := j.versions[r.Name]
		if m == nil {
			m = map[string]string{}
			j.versions[r.Name] = m
		}
		m[r.Old] = r.New
	case KindModelDone:
		j.modelsDone[r.Name] = true
	}
}

// Append records r: in memory, and (unless read-only) as a synced line
// of the file.
func (j *Journal) Append(r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.apply(r)
	if j.f == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the id map: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing the id map: %w", err)
	}
	return nil
}

// Close closes the file.
func (j *Journal) Close() error {
	if j.f == nil {
		return nil
	}
	return j.f.Close()
}

// Experiment is the destination id of a source experiment.
func (j *Journal) Experiment(old string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, ok := j.exps[old]
	return n, ok
}

// ExperimentDone reports whether a source experiment is exported whole.
func (j *Journal) ExperimentDone(old string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.expsDone[old]
}

// Run is the destination id of a source run.
func (j *Journal) Run(old string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, ok := j.runs[old]
	return n, ok
}

// RunDone reports whether a source run is exported whole.
func (j *Journal) RunDone(old string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runsDone[old]
}

// Version is the destination version number of a source model version.
func (j *Journal) Version(model, old string) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, ok := j.versions[model][old]
	return n, ok
}

// Versions is a copy of a model's version map.
func (j *Journal) Versions(model string) map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]string, len(j.versions[model]))
	for k, v := range j.versions[model] {
		out[k] = v
	}
	return out
}

// ModelDone reports whether a registered model is exported whole.
func (j *Journal) ModelDone(name string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.modelsDone[name]
}

// Runs is a copy of the run id map.
func (j *Journal) Runs() map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]string, len(j.runs))
	for k, v := range j.runs {
		out[k] = v
	}
	return out
}

// Experiments is a copy of the experiment id map.
func (j *Journal) Experiments() map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]string, len(j.exps))
	for k, v := range j.exps {
		out[k] = v
	}
	return out
}
