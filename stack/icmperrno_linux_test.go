package stack

import "syscall"

// wantHostIsolated is what a Linux socket reports for code 8.
const wantHostIsolated = syscall.ENONET
