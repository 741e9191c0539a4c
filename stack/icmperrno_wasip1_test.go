package stack

import "syscall"

// WASI has neither EHOSTDOWN nor ENONET.
const (
	wantHostDown     = syscall.EHOSTUNREACH
	wantHostIsolated = syscall.EHOSTUNREACH
)
