//go:build !linux

package stack

import "syscall"

// wantHostIsolated is what a BSD or macOS socket reports for code 8.
const wantHostIsolated = syscall.EHOSTUNREACH
