package e2e

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatal ends only the calling
// goroutine and keeps the message, so a test can check how the harness
// gives up. Everything else goes to the real test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) message() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

// holdPort listens on 127.0.0.1:port (0: any) with an HTTP server that
// answers 200 on every path, /health included, as a foreign server that
// took the port would; close releases the port.
func holdPort(t *testing.T, port int) (int, func()) {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("holding port %d: %v", port, err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("not caddy"))
	})}
	go hs.Serve(l)
	var once sync.Once
	release := func() { once.Do(func() { hs.Close() }) }
	t.Cleanup(release)
	return l.Addr().(*net.TCPAddr).Port, release
}

// TestHarnessPortTaken hands the harness ports that something else holds,
// as happens on CI when another test package takes a port between the
// harness picking it and caddy binding it:
//   - a first start on a taken port moves to another one (and is not
//     fooled by the holder answering /health);
//   - a restart waits for its own port to come free and keeps it;
//   - a restart whose port stays taken moves when the test allows it,
//     and otherwise fails saying so;
//   - a process that exits early is reported at once, with its output.
func TestHarnessPortTaken(t *testing.T) {
	taken, _ := holdPort(t, 0)
	srv := newServer(t, t.TempDir(), 0)
	picks := 0
	srv.pickPort = func(tb testing.TB) int {
		picks++
		if picks == 1 {
			return taken
		}
		return freePort(tb)
	}
	srv.start()
	if srv.port == taken {
		t.Fatalf("server reported healthy on the taken port %d (the holder answered /health)", taken)
	}
	if !strings.Contains(srv.logs.String(), "address already in use") {
		t.Fatalf("the first launch did not hit the taken port; log:\n%s", tail(srv.logs.String(), 4000))
	}
	createExperiment(t, srv.URL, "after-move")

	// Restart after kill -9 while something holds the port for a while:
	// same port, same data.
	port := srv.port
	srv.kill()
	inUse := strings.Count(srv.logs.String(), "address already in use")
	_, release := holdPort(t, port)
	go func() {
		// Free the port once caddy has failed on it at least once.
		srv.logs.waitFor("address already in use", inUse+1, time.Minute)
		release()
	}()
	srv.start()
	if srv.port != port {
		t.Fatalf("restart moved from port %d to %d; it must keep its address", port, srv.port)
	}
	if strings.Count(srv.logs.String(), "address already in use") <= inUse {
		t.Fatal("the restart never found its port taken; the test proved nothing")
	}
	createExperiment(t, srv.URL, "after-restart")

	// The port stays taken: a test that cannot cope with a new URL gets a
	// clear failure...
	srv.samePortWait = time.Second
	srv.kill()
	holdPort(t, port)
	rec := &fatalRecorder{TB: t}
	srv.t = rec
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.start()
	}()
	<-done
	srv.t = t
	if msg := rec.message(); !strings.Contains(msg, "this test needs the same address") || !strings.Contains(msg, "address already in use") {
		t.Fatalf("restart on a port that stays taken, canMove false: %q", msg)
	}
	if srv.port != port {
		t.Fatalf("server moved to %d without canMove", srv.port)
	}

	// ...and one that can moves, keeping its data.
	srv.canMove = true
	srv.start()
	if srv.port == port {
		t.Fatal("server did not move off the taken port")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(srv.URL + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=after-restart")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the moved server lost its data: %d", resp.StatusCode)
	}
	srv.stop()

	// A process that exits at once is reported as such, not after the
	// timeout, with what it printed.
	bad := newServer(t, t.TempDir(), 0)
	bad.prepare = func(s *server) { s.config = "http://127.0.0.1:" + fmt.Sprint(s.port) + " {\n\tno_such_directive\n}\n" }
	bad.launch()
	err2 := bad.waitReady(2 * time.Minute)
	if err2 == nil || !err2.exited || err2.inUse || !strings.Contains(err2.msg, "no_such_directive") {
		t.Fatalf("a config caddy rejects: %v", err2)
	}
}
