package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestListenKeys(t *testing.T) {
	ctx := context.Background()
	sock := filepath.Join(t.TempDir(), "m.sock")
	tests := []struct {
		listen []string
		want   []string // lock names without the prefix
	}{
		{[]string{":5000"}, []string{"tcp/5000/any"}},
		{[]string{"0.0.0.0:5000"}, []string{"tcp/5000/any"}},
		{[]string{"[::]:5000"}, []string{"tcp/5000/any"}},
		{[]string{"tcp4/0.0.0.0:5000"}, []string{"tcp/5000/any4"}},
		{[]string{"tcp6/[::]:5000"}, []string{"tcp/5000/any6"}},
		{[]string{"127.0.0.1:5000"}, []string{"tcp/5000/127.0.0.1"}},
		{[]string{"[::1]:5000"}, []string{"tcp/5000/::1"}},
		{[]string{"[::ffff:127.0.0.1]:5000"}, []string{"tcp/5000/127.0.0.1"}},
		{[]string{"localhost:5000"}, []string{"tcp/5000/127.0.0.1"}},
		{[]string{"127.0.0.1:5000-5002"}, []string{"tcp/5000/127.0.0.1", "tcp/5001/127.0.0.1", "tcp/5002/127.0.0.1"}},
		{[]string{":5000", "0.0.0.0:5000"}, []string{"tcp/5000/any"}},
		{[]string{"127.0.0.1:0"}, nil},
		{[]string{"udp/:443"}, nil},
		{[]string{"fd/3"}, nil},
	}
	for _, tt := range tests {
		keys, err := listenKeys(ctx, tt.listen)
		if err != nil {
			t.Errorf("listenKeys(%q): %v", tt.listen, err)
			continue
		}
		var got []string
		for _, k := range keys {
			got = append(got, strings.TrimPrefix(k.name(), listenLockPrefix))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("listenKeys(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}

	keys, err := listenKeys(ctx, []string{"unix/" + sock})
	if err != nil || len(keys) != 1 || keys[0].unixPath != sock || !strings.HasPrefix(keys[0].name(), listenLockPrefix+"unix/") {
		t.Errorf("unix socket keys = %+v, %v", keys, err)
	}
	if len(keys) == 1 && len(keys[0].name()) > 100 {
		t.Errorf("lock name %q does not fit a unix socket name", keys[0].name())
	}
	if _, err := listenKeys(ctx, []string{"tcp/127.0.0.1:99999"}); err == nil {
		t.Error("a bad listen address was accepted")
	}
}

func TestListenKeysOverlap(t *testing.T) {
	k := func(port uint, host string) listenKey { return listenKey{port: port, host: host} }
	tests := []struct {
		a, b listenKey
		want bool
	}{
		{k(5000, "any"), k(5000, "any"), true},
		{k(5000, "any"), k(5000, "127.0.0.1"), true},
		{k(5000, "any"), k(5000, "::1"), true},
		{k(5000, "any"), k(5000, "any4"), true},
		{k(5000, "any4"), k(5000, "127.0.0.1"), true},
		{k(5000, "any4"), k(5000, "::1"), false},
		{k(5000, "any6"), k(5000, "::1"), true},
		{k(5000, "any6"), k(5000, "any4"), false},
		{k(5000, "127.0.0.1"), k(5000, "127.0.0.1"), true},
		{k(5000, "127.0.0.1"), k(5000, "127.0.0.2"), false},
		{k(5000, "any"), k(5001, "any"), false},
		{listenKey{unixPath: "/a"}, listenKey{unixPath: "/a"}, true},
		{listenKey{unixPath: "/a"}, listenKey{unixPath: "/b"}, false},
		{listenKey{unixPath: "/a"}, k(5000, "any"), false},
	}
	for _, tt := range tests {
		if got := tt.a.overlaps(tt.b); got != tt.want {
			t.Errorf("%+v overlaps %+v = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.overlaps(tt.a); got != tt.want {
			t.Errorf("%+v overlaps %+v = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
		}
	}
	for _, name := range []string{"tcp/5000/any", "tcp/5000/127.0.0.1", "tcp/5000/::1"} {
		got, ok := parseListenLockName(listenLockPrefix + name)
		if !ok || strings.TrimPrefix(got.name(), listenLockPrefix) != name {
			t.Errorf("parseListenLockName(%q) = %+v, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"tcp/5000/", "tcp/x/any", "unix/abc", "other"} {
		if _, ok := parseListenLockName(listenLockPrefix + bad); ok {
			t.Errorf("parseListenLockName(%q) accepted", bad)
		}
	}
}

// foreignLock listens on the lock name of k outside this process's lock
// table, as another caddy-mlflow process would.
func foreignLock(t *testing.T, k listenKey) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + k.name(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// testPort is a port nobody else in this test binary uses for locks.
func testPort(t *testing.T) uint {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint(l.Addr().(*net.TCPAddr).Port)
}

func TestListenLocksConflicts(t *testing.T) {
	if !listenGuardSupported {
		t.Skip("the listen guard needs Linux")
	}
	port := testPort(t)
	k := func(host string) listenKey {
		return listenKey{port: port, host: host, addr: fmt.Sprintf("%s:%d", host, port)}
	}

	// The same address twice in one process (a reload) shares the lock.
	rel1, err := acquireListenLocks([]listenKey{k("any")})
	if err != nil {
		t.Fatal(err)
	}
	rel2, err := acquireListenLocks([]listenKey{k("any")})
	if err != nil {
		t.Fatalf("second reference in the same process: %v", err)
	}
	// So does an overlapping address of this process (a reload that
	// narrows the listener).
	rel3, err := acquireListenLocks([]listenKey{k("127.0.0.1")})
	if err != nil {
		t.Fatalf("overlapping address of the same process: %v", err)
	}
	if n := listenLockRefs(k("any")); n != 2 {
		t.Errorf("refs = %d, want 2", n)
	}
	rel1()
	rel1() // idempotent
	if n := listenLockRefs(k("any")); n != 1 {
		t.Errorf("refs after one release = %d, want 1", n)
	}
	rel2()
	rel3()
	if n := listenLockRefs(k("any")); n != 0 {
		t.Errorf("refs after all releases = %d, want 0", n)
	}

	// Released names are free for another process again.
	foreignLock(t, k("any"))

	// Another process on the wildcard: the same address, a specific one
	// on that port, and an IPv4 wildcard are refused; another port is not.
	for _, host := range []string{"any", "127.0.0.1", "any4", "::1"} {
		rel, err := acquireListenLocks([]listenKey{k(host)})
		var conflict *listenConflictError
		if !errors.As(err, &conflict) {
			if rel != nil {
				rel()
			}
			t.Errorf("%s while another process holds the wildcard: err = %v, want a conflict", host, err)
			continue
		}
		if conflict.pid != os.Getpid() {
			t.Errorf("conflict names pid %d, want %d (the holder)", conflict.pid, os.Getpid())
		}
		msg := err.Error()
		for _, want := range []string{"address already in use", "another mlflow server", fmt.Sprintf("port %d on all interfaces", port)} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if n := listenLockRefs(k(host)); n != 0 {
			t.Errorf("a refused acquire left %d references to %s", n, host)
		}
	}
	other := listenKey{port: testPort(t), host: "any", addr: "other"}
	rel, err := acquireListenLocks([]listenKey{other})
	if err != nil {
		t.Fatalf("another port: %v", err)
	}
	rel()
}

func TestListenLocksSpecificAddresses(t *testing.T) {
	if !listenGuardSupported {
		t.Skip("the listen guard needs Linux")
	}
	port := testPort(t)
	k := func(host string) listenKey {
		return listenKey{port: port, host: host, addr: fmt.Sprintf("%s:%d", host, port)}
	}
	foreignLock(t, k("127.0.0.1"))

	// A different address on the same port, or an IPv6-only wildcard,
	// does not overlap 127.0.0.1.
	for _, host := range []string{"127.0.0.2", "::1", "any6"} {
		rel, err := acquireListenLocks([]listenKey{k(host)})
		if err != nil {
			t.Errorf("%s next to another process on 127.0.0.1: %v", host, err)
			continue
		}
		rel()
	}
	// The dual-stack and IPv4 wildcards do: found by scanning the
	// namespace's abstract socket names.
	for _, host := range []string{"any", "any4", "127.0.0.1"} {
		rel, err := acquireListenLocks([]listenKey{k(host)})
		if err == nil {
			rel()
			t.Errorf("%s next to another process on 127.0.0.1 was not refused", host)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
			t.Errorf("message %q does not name the other address", err)
		}
	}
	// A failure part-way gives back what it took.
	free := listenKey{port: testPort(t), host: "any", addr: "free"}
	if _, err := acquireListenLocks([]listenKey{free, k("any")}); err == nil {
		t.Fatal("conflict not reported")
	}
	if n := listenLockRefs(free); n != 0 {
		t.Errorf("a refused acquire kept %d references to an address it took first", n)
	}
}

// TestProvisionRefusesForeignListener provisions a handler as Caddy's HTTP
// app does, inside a server listening on a port another mlflow process
// (simulated by a lock outside this process's table) listens on.
func TestProvisionRefusesForeignListener(t *testing.T) {
	if !listenGuardSupported {
		t.Skip("the listen guard needs Linux")
	}
	port := testPort(t)
	provisionIn := func(listen string) (*Handler, error) {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		ctx.Context = context.WithValue(ctx.Context, caddyhttp.ServerCtxKey, &caddyhttp.Server{Listen: []string{listen}})
		dir := t.TempDir()
		h := &Handler{BackendStoreURI: filepath.Join(dir, "m.bolt"), ArtifactsDestination: filepath.Join(dir, "a")}
		err := h.Provision(ctx)
		if err != nil {
			_ = h.Cleanup()
		}
		return h, err
	}

	h, err := provisionIn(fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	wild := listenKey{port: port, host: "any"}
	if n := listenLockRefs(wild); n != 1 {
		t.Errorf("refs = %d, want 1", n)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n := listenLockRefs(wild); n != 0 {
		t.Errorf("refs after Cleanup = %d, want 0", n)
	}

	foreignLock(t, listenKey{port: port, host: "any"})
	h, err = provisionIn(fmt.Sprintf("127.0.0.1:%d", port))
	if err == nil {
		_ = h.Cleanup()
		t.Fatal("provisioned next to another mlflow server on the same port")
	}
	if !strings.HasPrefix(err.Error(), "mlflow: listen address") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error = %v", err)
	}
	if n := dbReferences(h.boltPath); n != 0 || h.store != nil {
		t.Errorf("a refused Provision opened the backend store (%d references)", n)
	}
}
