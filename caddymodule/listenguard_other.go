//go:build !linux

package caddymodule

// listenGuardSupported reports whether this platform has the listen guard:
// it needs Linux's abstract unix sockets.
const listenGuardSupported = false

// lockListenName takes no lock off Linux.
func lockListenName(listenKey) (func(), error) { return func() {}, nil }

// checkOverlappingLocks finds nothing off Linux.
func checkOverlappingLocks(listenKey, func(string) bool) error { return nil }
