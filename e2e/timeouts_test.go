package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// secureExample is Caddyfile.secure.example made runnable in dir: its own
// port, and Caddy told not to install its local CA in the system trust
// store. Everything else (timeouts, TLS, auth, audit log, relative paths
// resolved in dir) is the example as shipped.
func secureExample(t *testing.T, port int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Caddyfile.secure.example"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"read_header 10s", "read_body_idle 30s 4096", "https://localhost:5443 {"} {
		if !strings.Contains(s, want) {
			t.Fatalf("Caddyfile.secure.example no longer contains %q; update this test with it", want)
		}
	}
	s = strings.Replace(s, "https://localhost:5443 {", fmt.Sprintf("https://localhost:%d {", port), 1)
	s = strings.Replace(s, "\tadmin off\n", "\tadmin off\n\tskip_install_trust\n", 1)
	return s
}

// writeClientCA writes a self-signed CA certificate as client-ca.pem in dir,
// which the example's client_auth and client_cert blocks require.
func writeClientCA(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "e2e client CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "client-ca.pem"), pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecureExampleCutsTricklingClients runs Caddyfile.secure.example and
// checks that its server timeouts close a connection that trickles its
// request headers, and one that trickles an (authenticated) upload body one
// byte a second, a pace that never stalls a read for long but is far below
// the example's minimum rate; while an upload slower than the idle window
// is long, but steady, goes through.
func TestSecureExampleCutsTricklingClients(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the example's timeouts (about 40s); skipped with -short")
	}
	dir := t.TempDir()
	bin := caddyBinary(t)

	const password = "an-e2e-admin-password"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hash, err := runCommand(ctx, dir, nil, bin, "hash-password", "--plaintext", password)
	if err != nil {
		t.Fatalf("caddy hash-password: %v: %s", err, hash)
	}
	secret := make([]byte, 48)
	rand.Read(secret)
	writeClientCA(t, dir)
	t.Setenv("MLFLOW_ADMIN_HASH", strings.TrimSpace(hash))
	t.Setenv("MLFLOW_JWT_SECRET", base64.StdEncoding.EncodeToString(secret))

	srv := newServer(t, dir, 0)
	srv.prepare = func(s *server) {
		s.config = secureExample(t, s.port)
		s.URL = fmt.Sprintf("https://localhost:%d", s.port)
	}
	// Caddy's local CA only exists once it runs: poll /health without
	// verifying, then verify everything else against the CA's root.
	srv.healthClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	srv.start()
	port := srv.port

	rootPEM, err := os.ReadFile(filepath.Join(dir, "caddy-storage", "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("no root certificate")
	}
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+password))

	var wg sync.WaitGroup
	run := func(name string, f func(t *testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	}
	// Subtests run in goroutines so the three waits overlap; t.Run
	// blocks only its own goroutine.
	run("trickled headers", func(t *testing.T) {
		conn := dialTLS(t, addr, tlsCfg)
		fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: localhost:%d\r\nX-Slow: ", port)
		closedAfter, answered := trickle(conn, time.Second, 40*time.Second)
		if strings.HasPrefix(answered, "HTTP/1.1 2") {
			t.Fatalf("server answered a request whose headers never ended: %q", answered)
		}
		if closedAfter < 0 {
			t.Fatal("connection trickling its headers still open after 40s (read_header is 10s)")
		}
		t.Logf("closed after %v", closedAfter.Round(time.Second))
	})
	run("trickled body", func(t *testing.T) {
		conn := dialTLS(t, addr, tlsCfg)
		fmt.Fprintf(conn, "PUT /api/2.0/mlflow-artifacts/artifacts/slow/trickle.bin HTTP/1.1\r\nHost: localhost:%d\r\n"+
			"Authorization: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n", port, auth)
		closedAfter, answered := trickle(conn, time.Second, 75*time.Second)
		if closedAfter < 0 {
			t.Fatal("connection trickling an upload body still open after 75s (read_body_idle 30s at 4096 bytes/s)")
		}
		if strings.HasPrefix(answered, "HTTP/1.1 2") {
			t.Fatalf("a trickled, unfinished upload was answered %q", answered)
		}
		// A 30s window plus 1/4096s per byte sent: cut soon after 30s,
		// although no read stalls for more than a second.
		if closedAfter < 25*time.Second {
			t.Errorf("closed after %v, before the 30s idle window; answered %q", closedAfter, answered)
		}
		t.Logf("closed after %v (answered %q)", closedAfter.Round(time.Second), answered)
	})
	run("slow steady upload", func(t *testing.T) {
		// 40s at 8 KiB/s: longer than the 30s window, above the rate.
		const chunk, chunks = 4096, 80
		pr, pw := io.Pipe()
		go func() {
			buf := make([]byte, chunk)
			for i := 0; i < chunks; i++ {
				if _, err := pw.Write(buf); err != nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/api/2.0/mlflow-artifacts/artifacts/slow/steady.bin", pr)
		req.ContentLength = chunk * chunks
		req.Header.Set("Authorization", auth)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 2 * time.Minute}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("slow steady upload: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("slow steady upload: %d %s", resp.StatusCode, body)
		}
		st, err := os.Stat(filepath.Join(dir, "mlartifacts", "slow", "steady.bin"))
		if err != nil || st.Size() != chunk*chunks {
			t.Fatalf("stored upload: %v, %v", st, err)
		}
		t.Logf("uploaded in %v", time.Since(start).Round(time.Second))
	})
	wg.Wait()
}

// dialTLS opens a TLS connection to addr.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) net.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trickle writes one byte every interval until the server closes conn or
// limit passes. It returns how long the connection stayed open (-1 when it
// did not close) and the status line of any answer the server sent.
func trickle(conn net.Conn, interval, limit time.Duration) (time.Duration, string) {
	start := time.Now()
	closed := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		// Read until the server closes the connection.
		io.Copy(io.Discard, conn)
		closed <- strings.TrimSpace(line)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for time.Since(start) < limit {
		select {
		case line := <-closed:
			return time.Since(start), line
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				// The server is gone; collect the reader's verdict.
				select {
				case line := <-closed:
					return time.Since(start), line
				case <-time.After(5 * time.Second):
					return time.Since(start), ""
				}
			}
		}
	}
	return -1, ""
}
