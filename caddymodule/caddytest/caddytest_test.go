package caddytest

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestRestartWaitsForItsPort: a port another process takes between Stop
// and the new load is waited for, and the server comes back on it.
func TestRestartWaitsForItsPort(t *testing.T) {
	s := Start(t, Options{})
	s.Stop()
	// Caddy lets go of its listener shortly after Stop returns: take the
	// port as soon as it is free.
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("taking the server's port: %v", err)
		}
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		_ = l.Close()
		close(released)
	}()
	s.Restart(t, Options{})
	select {
	case <-released:
	default:
		t.Fatal("Restart returned while another listener still held its port")
	}
	resp, err := s.Client().Get(s.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health after the restart: %d", resp.StatusCode)
	}
}
