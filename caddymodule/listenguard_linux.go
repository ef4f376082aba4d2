//go:build linux

package caddymodule

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// listenGuardSupported reports whether this platform has the listen guard.
const listenGuardSupported = true

// lockListenName binds and listens on the abstract unix socket named after
// k. The kernel refuses a second socket with the same name (EADDRINUSE) and
// frees the name when the socket is closed or the process dies. Peers that
// connect (to learn the holder's pid) are accepted and hung up on.
func lockListenName(k listenKey) (release func(), err error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + k.name(), Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &listenConflictError{key: k, other: k, pid: listenLockHolder(k.name())}
		}
		return nil, fmt.Errorf("taking the listen lock of %s: %w", k.addr, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return func() { ln.Close() }, nil
}

// listenLockHolder returns the pid of the process listening on the named
// lock, or 0 when nobody does (or it cannot be told).
func listenLockHolder(name string) int {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.Dial("unix", "@"+name)
	if err != nil {
		return 0
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	if pid == 0 {
		return -1 // alive, pid not visible (another pid namespace)
	}
	return pid
}

// checkOverlappingLocks fails when a lock of another process covers an
// address overlapping k. The candidates are the wildcard names of k's port
// plus every lock name on that port in /proc/net/unix (the abstract names
// of this network namespace); a candidate counts only if it is not ours
// and somebody is listening on it.
func checkOverlappingLocks(k listenKey, ours func(name string) bool) error {
	if k.unixPath != "" {
		return nil // one name per path: the bind itself decided
	}
	prefix := k.portPrefix()
	candidates := map[string]bool{prefix + "any": true, prefix + "any4": true, prefix + "any6": true}
	for _, name := range abstractSocketNames(prefix) {
		candidates[name] = true
	}
	for name := range candidates {
		if name == k.name() || ours(name) {
			continue
		}
		other, ok := parseListenLockName(name)
		if !ok || !k.overlaps(other) {
			continue
		}
		pid := listenLockHolder(name)
		if pid == 0 {
			continue // a stale entry, or a process that just let go
		}
		return &listenConflictError{key: k, other: other, pid: max(pid, 0)}
	}
	return nil
}

// abstractSocketNames lists the abstract unix socket names starting with
// prefix in this network namespace. An unreadable /proc yields none; the
// wildcard names are still checked by the caller.
func abstractSocketNames(prefix string) []string {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		path := fields[len(fields)-1]
		if name, ok := strings.CutPrefix(path, "@"); ok && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}
