package stack

import "syscall"

// errnoHostIsolated is what Linux reports for "source host isolated"
// (destination unreachable code 8).
const errnoHostIsolated = syscall.ENONET
