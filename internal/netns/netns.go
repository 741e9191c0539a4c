//go:build linux

// Package netns is a test harness that runs tests against the Linux kernel
// inside throwaway network namespaces. Import it from _test files only.
//
// Every namespace, device and process it creates is removed by t.Cleanup.
// Tests using it need root; RequireRoot skips them otherwise, except under
// CI=true where they must run and fail loudly instead.
package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cmdTimeout bounds every command the harness runs.
const cmdTimeout = 30 * time.Second

// prefix names this package's namespaces: prefix + pid + "-" + counter, so
// that test binaries running in parallel never collide and namespaces left
// behind by a killed binary can be recognized and removed.
const prefix = "tapnet-"

var (
	counter    atomic.Uint64
	sweepStale sync.Once
)

// RequireRoot skips the test unless it runs as root with iproute2 installed.
// When CI=true the test fails instead, so CI cannot silently skip it.
func RequireRoot(t testing.TB) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	fail := t.Skip
	if ci {
		fail = t.Fatal
	}
	if os.Geteuid() != 0 {
		fail("netns: test needs root (CI=true requires it)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fail("netns: test needs iproute2's ip command: ", err)
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		fail("netns: test needs /dev/net/tun: ", err)
	}
}

// NS is a network namespace created for one test.
type NS struct {
	name string
	mu   sync.Mutex
	cmds []*exec.Cmd
}

// New creates a network namespace with lo up and IPv6 disabled (the stack
// under test is IPv4-only and IPv6 autoconfiguration would add unrelated
// frames to every link). Cleanup kills the processes in it and deletes it.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	ns := &NS{name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), counter.Add(1))}
	err := withLock(func() error {
		sweepStale.Do(removeStale)
		return run("ip", "netns", "add", ns.name)
	})
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(ns.destroy)
	ns.IP(t, "link", "set", "lo", "up")
	err = ns.Do(func() error {
		for _, p := range []string{"all", "default"} {
			err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6", []byte("1"), 0)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netns: disabling IPv6 in %s: %v", ns.name, err)
	}
	return ns
}

// NewIPv6 is New with IPv6 on, for tests that talk IPv6 to the kernel. The
// kernel runs no duplicate address detection (accept_dad=0), so that its
// addresses are usable at once, and accepts no router advertisements
// (accept_ra=0): it is the host facing tapnet and configures only what the
// test tells it to.
func NewIPv6(t testing.TB) *NS {
	t.Helper()
	ns := New(t)
	err := ns.Do(func() error {
		for _, p := range []string{"all", "default", "lo"} {
			for _, kv := range [][2]string{{"accept_dad", "0"}, {"accept_ra", "0"}, {"disable_ipv6", "0"}} {
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/"+kv[0], []byte(kv[1]), 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netns: enabling IPv6 in %s: %v", ns.name, err)
	}
	return ns
}

// Name returns the namespace's name, as `ip netns` knows it.
func (ns *NS) Name() string { return ns.name }

// Path returns the namespace's file, for setns(2).
func (ns *NS) Path() string { return filepath.Join("/run/netns", ns.name) }

// Exec runs args inside the namespace (`ip netns exec NAME args...`) and
// returns its combined output. It fails the test if the command fails or
// runs longer than 30s.
func (ns *NS) Exec(t testing.TB, args ...string) string {
	t.Helper()
	return runT(t, append([]string{"ip", "netns", "exec", ns.name}, args...))
}

// IP runs `ip -n NAME args...`, the cheap way to configure the namespace,
// and returns its output. It fails the test on error.
func (ns *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	return runT(t, append([]string{"ip", "-n", ns.name}, args...))
}

// AwaitUp waits, up to 3s, until ifname in the namespace is operationally
// up with its queueing discipline attached. `ip link set up` returns before
// that: when the carrier comes on after the open (a veth whose peer comes up
// second), the kernel attaches the qdisc from its link-watch worker, and
// until then every frame the interface sends is dropped silently.
func (ns *NS) AwaitUp(t testing.TB, ifname string) {
	t.Helper()
	for range 300 {
		l := ns.IP(t, "-o", "link", "show", "dev", ifname)
		if strings.Contains(l, "state UP") && !strings.Contains(l, "qdisc noop") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("netns: %s in %s not up after 3s", ifname, ns.name)
}

// Command prepares args to run inside the namespace in their own process
// group; set its Stdout and friends, then Start it. Cleanup kills the group.
func (ns *NS) Command(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	ns.mu.Lock()
	ns.cmds = append(ns.cmds, cmd)
	ns.mu.Unlock()
	return cmd
}

// Start starts args in the background inside the namespace, output
// discarded; cleanup kills it.
func (ns *NS) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(t, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("netns: starting %q: %v", args, err)
	}
	return cmd
}

// Do runs fn on the calling goroutine, locked to an OS thread switched into
// the namespace, and switches back afterwards. Sockets and devices created by
// fn belong to the namespace for good; goroutines fn starts do not run in it.
// If the thread cannot be switched back it stays locked, so that Go discards
// it when the goroutine exits, and Do reports the error.
func (ns *NS) Do(fn func() error) (err error) {
	target, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: setns %s: %w", ns.name, err)
	}
	// Deferred so that the thread is restored even if fn calls t.FailNow
	// or panics.
	defer func() {
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			err = errors.Join(err, fmt.Errorf("netns: restoring thread namespace: %w", rerr))
			return // still locked: the thread dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// destroy kills what runs in the namespace and deletes it.
func (ns *NS) destroy() {
	ns.mu.Lock()
	cmds := ns.cmds
	ns.cmds = nil
	ns.mu.Unlock()
	for _, cmd := range cmds {
		if cmd.Process == nil {
			continue
		}
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		if cmd.ProcessState == nil {
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	// Processes started inside by other means (Exec of a shell that
	// backgrounds something) are ours too.
	if out, err := output("ip", "netns", "pids", ns.name); err == nil {
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	_ = run("ip", "netns", "del", ns.name)
}

// removeStale deletes namespaces of this package whose test binary is gone
// (killed before its cleanup ran).
func removeStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		_ = run("ip", "netns", "del", e.Name())
	}
}

// withLock serializes namespace creation across processes: concurrent first
// uses of `ip netns add` can stack mounts on /run/netns and hide each
// other's namespaces.
func withLock(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "tapnet-netns.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

func output(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%q: %w: %s", args, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func run(args ...string) error {
	_, err := output(args...)
	return err
}

func runT(t testing.TB, args []string) string {
	t.Helper()
	out, err := output(args...)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	return out
}
