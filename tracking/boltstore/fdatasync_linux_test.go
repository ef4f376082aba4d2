package boltstore

import (
	"os"
	"syscall"
)

// fdatasyncFile flushes f's data as bbolt does on Linux.
func fdatasyncFile(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
