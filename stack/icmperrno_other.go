//go:build !linux

package stack

import "syscall"

// errnoHostIsolated stands in for Linux's ENONET ("machine is not on the
// network"), which other systems lack: the BSDs and macOS map every
// host-unreachable code, isolation included, to EHOSTUNREACH.
const errnoHostIsolated = syscall.EHOSTUNREACH
