package stack

import (
	"syscall"
	"testing"
)

func TestErrnoForICMPv4(t *testing.T) {
	for _, c := range []struct {
		typ, code uint8
		errno     syscall.Errno
		hard      bool
	}{
		{3, 0, syscall.ENETUNREACH, false},
		{3, 1, syscall.EHOSTUNREACH, false},
		{3, 2, syscall.ENOPROTOOPT, true},
		{3, 3, syscall.ECONNREFUSED, true},
		{3, 4, syscall.EMSGSIZE, false},
		{3, 7, wantHostDown, true},
		{3, 8, wantHostIsolated, true},
		{3, 13, syscall.EHOSTUNREACH, true},
		{3, 15, syscall.EHOSTUNREACH, true},
		{3, 16, syscall.EHOSTUNREACH, false},
		{3, 255, syscall.EHOSTUNREACH, false},
		{11, 0, syscall.EHOSTUNREACH, false},
		{11, 1, syscall.EHOSTUNREACH, false},
		{12, 0, syscall.EPROTO, true},
		{0, 0, 0, false},
		{4, 0, 0, false},
		{5, 1, 0, false},
		{8, 0, 0, false},
	} {
		errno, hard := errnoForICMPv4(c.typ, c.code)
		if errno != c.errno || hard != c.hard {
			t.Errorf("ICMP %d/%d: %v hard=%v, want %v hard=%v", c.typ, c.code, errno, hard, c.errno, c.hard)
		}
	}
	checkErrnoTable(t, "ICMP", errnoForICMPv4, func(typ uint8) bool {
		return typ == 3 || typ == 11 || typ == 12
	})
}

func TestErrnoForICMPv6(t *testing.T) {
	for _, c := range []struct {
		typ, code uint8
		errno     syscall.Errno
		hard      bool
	}{
		{1, 0, syscall.ENETUNREACH, false},
		{1, 1, syscall.EACCES, true},
		{1, 2, syscall.EHOSTUNREACH, false},
		{1, 3, syscall.EHOSTUNREACH, false},
		{1, 4, syscall.ECONNREFUSED, true},
		{1, 5, syscall.EACCES, true},
		{1, 6, syscall.EACCES, true},
		{1, 7, syscall.EPROTO, true},
		{1, 255, syscall.EPROTO, true},
		{2, 0, syscall.EMSGSIZE, false},
		{3, 0, syscall.EHOSTUNREACH, false},
		{3, 1, syscall.EHOSTUNREACH, false},
		{4, 0, syscall.EPROTO, true},
		{4, 2, syscall.EPROTO, true},
		{128, 0, 0, false},
		{135, 0, 0, false},
	} {
		if errno, hard := errnoForICMPv6(c.typ, c.code); errno != c.errno || hard != c.hard {
			t.Errorf("ICMPv6 %d/%d: %v hard=%v, want %v hard=%v", c.typ, c.code, errno, hard, c.errno, c.hard)
		}
	}
	checkErrnoTable(t, "ICMPv6", errnoForICMPv6, func(typ uint8) bool { return typ >= 1 && typ <= 4 })
}

// checkErrnoTable checks every type and code: the socket-reported types
// (isReported) map to an errno for every code, every other type to none,
// and only an errno can be hard.
func checkErrnoTable(t *testing.T, name string, table func(typ, code uint8) (syscall.Errno, bool), isReported func(uint8) bool) {
	t.Helper()
	for typ := range 256 {
		for code := range 256 {
			errno, hard := table(uint8(typ), uint8(code))
			if (errno != 0) != isReported(uint8(typ)) || hard && errno == 0 {
				t.Fatalf("%s %d/%d maps to %v hard=%v", name, typ, code, errno, hard)
			}
		}
	}
}
