package stack

import "syscall"

// What a Linux socket reports for unreachable codes 7 and 8.
const (
	wantHostDown     = syscall.EHOSTDOWN
	wantHostIsolated = syscall.ENONET
)
