//go:build !linux && !wasip1

package stack

import "syscall"

// What the stack reports for unreachable codes 7 and 8 on systems without
// ENONET (the BSDs' choice for code 8).
const (
	wantHostDown     = syscall.EHOSTDOWN
	wantHostIsolated = syscall.EHOSTUNREACH
)
