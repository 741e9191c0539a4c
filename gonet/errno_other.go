//go:build !windows

package gonet

import "syscall"

// osErrno is the error net returns on this system for errno: on POSIX
// systems the stack's errnos are already the system's.
func osErrno(errno syscall.Errno) syscall.Errno { return errno }

// osCall is the name net gives the system call it made on this system.
func osCall(name string) string { return name }
