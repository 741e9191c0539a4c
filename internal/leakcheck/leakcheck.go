// Package leakcheck finds goroutines that tests leave running. Import it
// from _test files only.
//
// Main wraps a package's TestMain: after every test has run, it waits a
// bounded settle time for goroutines to finish and fails the test binary,
// printing their stacks, if any goroutine other than the runtime's and the
// testing package's is still alive. Check does the same around a single
// test, for tests that must not run in parallel with others.
package leakcheck

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Settle bounds how long a check waits for goroutines to exit: closing a
// stack stops its goroutines synchronously, but goroutines a test spawned
// (readers woken by Close, timer callbacks) return a little later.
const Settle = 5 * time.Second

// ignored are frames of goroutines that are not the tests' own: the
// testing package's bookkeeping, signal handling, fuzzing machinery and
// the js/wasm runtime's event loop.
var ignored = []string{
	"testing.(*M).",
	"testing.tRunner(",
	"testing.(*T).Run(",
	"testing.(*F).Fuzz",
	"testing.runFuzzTests",
	"testing.runFuzzing",
	"testing.(*M).startAlarm",
	"testing/internal/testdeps.",
	"internal/fuzz.",
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"runtime.goexit0",
	"created by runtime.gc",
	"runtime.ReadTrace",
	"runtime.handleEvent(", // js/wasm: the runtime's callback pump
	"runtime/trace.Start",
	"leakcheck.goroutines(",
}

// goroutine is one entry of a full stack dump.
type goroutine struct {
	id    uint64
	stack string
}

// goroutines returns every goroutine but the caller's and the ignored ones.
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, g := range strings.Split(string(buf), "\n\n") {
		g = strings.TrimSpace(g)
		header, _, _ := strings.Cut(g, "\n")
		// "goroutine 123 [running]:"
		f := strings.Fields(header)
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(ignored, func(s string) bool { return strings.Contains(g, s) }) {
			continue
		}
		out = append(out, goroutine{id: id, stack: g})
	}
	return out
}

// wait polls until no goroutine outside keep is left, or Settle passes, and
// returns those left.
func wait(keep map[uint64]bool) []goroutine {
	deadline := time.Now().Add(Settle)
	for {
		var left []goroutine
		for _, g := range goroutines() {
			if !keep[g.id] {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func format(left []goroutine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutine(s) still running after %v:\n", len(left), Settle)
	for _, g := range left {
		b.WriteString("\n")
		b.WriteString(g.stack)
		b.WriteString("\n")
	}
	return b.String()
}

// fuzzing reports whether the binary runs as a fuzzing coordinator or
// worker, whose machinery keeps goroutines of its own.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil {
			if v := f.Value.String(); v != "" && v != "false" {
				return true
			}
		}
	}
	return false
}

// Main runs the package's tests and then checks that they left no
// goroutines behind. Use it as
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
//
// A leak makes the binary exit with status 1 even if every test passed.
// Checks are skipped while fuzzing.
func Main(m *testing.M) {
	code := m.Run()
	if !fuzzing() {
		if left := wait(nil); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "leakcheck: "+format(left))
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Check records the goroutines running now and, when the test ends, fails
// it if goroutines started since are still running after the settle time.
// It must not be used by tests that run in parallel with others.
func Check(t testing.TB) {
	t.Helper()
	keep := map[uint64]bool{}
	for _, g := range goroutines() {
		keep[g.id] = true
	}
	t.Cleanup(func() {
		if left := wait(keep); len(left) > 0 {
			t.Errorf("leakcheck: %s", format(left))
		}
	})
}

// Count returns the number of goroutines the checks would consider, for
// tests that report or compare counts.
func Count() int { return len(goroutines()) }
