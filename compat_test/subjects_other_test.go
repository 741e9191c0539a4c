//go:build !linux

package compat

import "testing"

// The kernel and TAP subjects need Linux (namespaces, TAP devices), and the
// tables record Linux's errnos and messages; TestCompat and
// TestMulticastCompat skip elsewhere (see linuxTables), these stubs only
// keep the package building.

func tapnetTAPSubject(f family) Subject {
	return Subject{Name: "tapnet-tap" + f.name, Setup: func(t *testing.T) { t.Skip("TAP devices need Linux") }}
}

func kernelMcSubject(*mcFamily) mcSubject {
	return mcSubject{name: "kernel", hosts: func(t *testing.T) [3]*mcHost {
		t.Skip("network namespaces need Linux")
		return [3]*mcHost{}
	}}
}
