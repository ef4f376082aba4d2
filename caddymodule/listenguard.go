package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// The listen guard keeps a second mlflow server off an address that one is
// already listening on.
//
// Caddy binds its listeners with SO_REUSEPORT on Linux, so a second Caddy
// started on the same address binds without error and the kernel spreads
// new connections over both processes: each has its own bbolt file, both
// hand out experiment id "1", and a client's writes land in whichever store
// its connection reached. The guard turns that into a start-up error.
//
// Every mlflow handler, while provisioned, holds one lock per TCP port (or
// unix socket) its server listens on. On Linux a lock is a listening
// socket in the abstract unix namespace, named after the address: the
// kernel lets only one socket hold a name, drops it when the process dies
// (kill -9 included), and scopes the namespace to the network namespace,
// which is exactly where two listeners on one port could meet. Locks are
// counted per process, so a config reload, which provisions the new config
// while the old one still holds the same address, takes another reference
// instead of conflicting with itself.
//
// Two addresses overlap when they share a port and one of them covers the
// other: a wildcard listener (":5000", "0.0.0.0:5000", "[::]:5000") covers
// every address of its family, so 0.0.0.0:5000 and 127.0.0.1:5000 conflict
// (the kernel would send 127.0.0.1 clients to one process and the rest to
// the other), while 127.0.0.1:5000 and 127.0.0.2:5000, or two ports, do
// not.

// listenLockPrefix starts the name of every lock.
const listenLockPrefix = "caddy-mlflow.listen/"

// listenKey is one address a server listens on, reduced to what decides
// overlap: a TCP port with a host class, or a unix socket path.
type listenKey struct {
	unixPath string // cleaned absolute socket path; "" for TCP
	port     uint
	// host is "any" (dual-stack wildcard), "any4", "any6", or an IP
	// address in its canonical form (or, when a name did not resolve, the
	// name itself).
	host string
	addr string // the listen address as configured, for messages
}

// name is the lock name of the key: unique per address, short enough for
// a unix socket name.
func (k listenKey) name() string {
	if k.unixPath != "" {
		sum := sha256.Sum256([]byte(k.unixPath))
		return listenLockPrefix + "unix/" + hex.EncodeToString(sum[:12])
	}
	return listenLockPrefix + "tcp/" + strconv.FormatUint(uint64(k.port), 10) + "/" + k.host
}

// portPrefix is the common prefix of the lock names of every TCP key on
// the port of k.
func (k listenKey) portPrefix() string {
	return listenLockPrefix + "tcp/" + strconv.FormatUint(uint64(k.port), 10) + "/"
}

// parseListenLockName is the inverse of listenKey.name for TCP names; ok
// is false for anything else.
func parseListenLockName(name string) (listenKey, bool) {
	rest, ok := strings.CutPrefix(name, listenLockPrefix+"tcp/")
	if !ok {
		return listenKey{}, false
	}
	portStr, host, ok := strings.Cut(rest, "/")
	if !ok || host == "" {
		return listenKey{}, false
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return listenKey{}, false
	}
	return listenKey{port: uint(port), host: host}, true
}

// family reports 4 or 6 for an IP host, 0 for a wildcard or a name.
func (k listenKey) family() int {
	ip, err := netip.ParseAddr(k.host)
	if err != nil {
		return 0
	}
	if ip.Is4() {
		return 4
	}
	return 6
}

// overlaps reports whether two listeners on a and b could both receive
// connections meant for the same address.
func (a listenKey) overlaps(b listenKey) bool {
	if a.unixPath != "" || b.unixPath != "" {
		return a.unixPath == b.unixPath
	}
	if a.port != b.port {
		return false
	}
	if a.host == b.host || a.host == "any" || b.host == "any" {
		return true
	}
	covers := func(wild listenKey, other listenKey) bool {
		switch wild.host {
		case "any4":
			return other.family() == 4
		case "any6":
			return other.family() == 6
		}
		return false
	}
	return covers(a, b) || covers(b, a)
}

// listenKeys turns a Caddy server's listen addresses into lock keys.
// Addresses whose port the OS picks (port 0) and file descriptor networks
// are skipped: they cannot collide by configuration.
func listenKeys(ctx context.Context, listen []string) ([]listenKey, error) {
	var keys []listenKey
	seen := map[string]bool{}
	add := func(k listenKey) {
		if !seen[k.name()] {
			seen[k.name()] = true
			keys = append(keys, k)
		}
	}
	for _, addr := range listen {
		na, err := caddy.ParseNetworkAddress(addr)
		if err != nil {
			return nil, fmt.Errorf("parsing listen address %q: %w", addr, err)
		}
		switch {
		case na.IsFdNetwork():
			continue
		case na.IsUnixNetwork():
			path := na.Host
			if !isAbstractSocket(path) {
				if abs, err := filepath.Abs(path); err == nil {
					path = abs
				}
			}
			add(listenKey{unixPath: filepath.Clean(path), addr: addr})
			continue
		case !strings.HasPrefix(na.Network, "tcp"):
			continue // udp-only (HTTP/3) listeners ride on a TCP port too
		}
		host, err := listenHost(ctx, na.Network, na.Host)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", addr, err)
		}
		for off := uint(0); off < na.PortRangeSize(); off++ {
			port := na.StartPort + off
			if port == 0 {
				continue
			}
			add(listenKey{port: port, host: host, addr: addr})
		}
	}
	return keys, nil
}

// isAbstractSocket reports whether a unix socket path names the abstract
// namespace.
func isAbstractSocket(path string) bool { return strings.HasPrefix(path, "@") }

// listenHost classifies the host part of a TCP listen address the way Go's
// net.Listen binds it: no host, 0.0.0.0 or :: on "tcp" is one dual-stack
// wildcard socket; on "tcp4"/"tcp6" a wildcard of that family; a name
// binds its first IPv4 address (else its first address).
func listenHost(ctx context.Context, network, host string) (string, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	wildcard := func() string {
		switch network {
		case "tcp4":
			return "any4"
		case "tcp6":
			return "any6"
		}
		return "any"
	}
	if host == "" {
		return wildcard(), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		if ip.IsUnspecified() {
			return wildcard(), nil
		}
		return ip.String(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		// Caddy will fail to bind it anyway; compare by name.
		return strings.ToLower(host), nil
	}
	pick := addrs[0]
	for _, a := range addrs {
		if a.Unmap().Is4() {
			pick = a
			break
		}
	}
	return pick.Unmap().WithZone("").String(), nil
}

// heldListenLock is one lock this process holds, with the number of
// provisioned handlers using it.
type heldListenLock struct {
	refs    int
	release func()
}

// listenLocks are the locks this process holds, by name.
var listenLocks = struct {
	sync.Mutex
	m map[string]*heldListenLock
}{m: map[string]*heldListenLock{}}

// listenConflictError says that another process serves an address.
type listenConflictError struct {
	key   listenKey // ours
	other listenKey // theirs; other.addr may be empty
	pid   int       // 0 when unknown
}

func (e *listenConflictError) Error() string {
	who := "another mlflow server"
	if e.pid > 0 {
		who += fmt.Sprintf(" (pid %d)", e.pid)
	}
	where := describeListenKey(e.other)
	return fmt.Sprintf("listen address %s: address already in use by %s listening on %s; "+
		"two servers on one address would split clients, and their data, between two backend stores "+
		"(the kernel shares the port between them); stop the other server or listen on another address",
		e.key.addr, who, where)
}

// describeListenKey renders a key for messages.
func describeListenKey(k listenKey) string {
	if k.unixPath != "" {
		return "unix socket " + k.unixPath
	}
	switch k.host {
	case "any":
		return fmt.Sprintf("port %d on all interfaces", k.port)
	case "any4":
		return fmt.Sprintf("port %d on all IPv4 interfaces", k.port)
	case "any6":
		return fmt.Sprintf("port %d on all IPv6 interfaces", k.port)
	}
	return net.JoinHostPort(k.host, strconv.FormatUint(uint64(k.port), 10))
}

// acquireListenLocks takes (or adds a reference to) the lock of every key
// and returns the function that gives them back. It fails, holding
// nothing, when another process holds a lock on an overlapping address.
func acquireListenLocks(keys []listenKey) (release func(), err error) {
	listenLocks.Lock()
	defer listenLocks.Unlock()
	var taken []string
	defer func() {
		if err != nil {
			dropListenLocks(taken)
		}
	}()
	for _, k := range keys {
		name := k.name()
		if held := listenLocks.m[name]; held != nil {
			held.refs++
			taken = append(taken, name)
			continue
		}
		rel, err := lockListenName(k)
		if err != nil {
			return nil, err
		}
		listenLocks.m[name] = &heldListenLock{refs: 1, release: rel}
		taken = append(taken, name)
		// Bind first, then look: of two processes starting at once on
		// overlapping addresses, the one that looks second sees the other.
		if err := checkOverlappingLocks(k, func(name string) bool { return listenLocks.m[name] != nil }); err != nil {
			return nil, err
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			listenLocks.Lock()
			defer listenLocks.Unlock()
			dropListenLocks(taken)
		})
	}, nil
}

// dropListenLocks drops one reference to each named lock; the caller holds
// listenLocks.
func dropListenLocks(names []string) {
	for _, name := range names {
		held := listenLocks.m[name]
		if held == nil {
			continue
		}
		held.refs--
		if held.refs <= 0 {
			held.release()
			delete(listenLocks.m, name)
		}
	}
}

// listenLockRefs reports how many handlers of this process hold the lock
// of k (for tests).
func listenLockRefs(k listenKey) int {
	listenLocks.Lock()
	defer listenLocks.Unlock()
	if held := listenLocks.m[k.name()]; held != nil {
		return held.refs
	}
	return 0
}
