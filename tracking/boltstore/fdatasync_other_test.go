//go:build !linux

package boltstore

import "os"

// fdatasyncFile flushes f's data (bbolt uses fsync outside Linux).
func fdatasyncFile(f *os.File) error { return f.Sync() }
