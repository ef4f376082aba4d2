package tracking

import (
	"errors"
	"strings"
	"syscall"
)

// ResourceExhausted is MLflow's RESOURCE_EXHAUSTED code. This server uses
// it for one thing only, a write refused because its storage is full, and
// answers it with 507 Insufficient Storage rather than MLflow's 429: MLflow's
// client retries 429 (and 500, 503) for minutes, which cannot help a full
// disk, and 507 says what happened.
const ResourceExhausted ErrorCode = "RESOURCE_EXHAUSTED"

// IsNoSpace reports a write that failed because the file system is full
// or the user's quota is used up (ENOSPC, EDQUOT), also when a library
// reported it as text only (bbolt's "file resize error: %s").
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// NoSpace is the client's answer to a write that failed with IsNoSpace:
// RESOURCE_EXHAUSTED (507) naming what could not be written, with no
// detail of the server's file system.
func NoSpace(what string) *Error {
	return Errorf(ResourceExhausted,
		"Insufficient storage: the server could not write %s because its storage is full "+
			"(no space left on device or quota exceeded). Free space on the server, then retry.", what)
}
