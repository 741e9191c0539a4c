//go:build linux

package netns_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapnet/tapnet/internal/netns"
	"github.com/tapnet/tapnet/tap"
)

func exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

func threadNS(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNamespaceLifecycle(t *testing.T) {
	netns.RequireRoot(t)
	var name string
	var cmd *exec.Cmd
	t.Run("inner", func(t *testing.T) {
		ns := netns.New(t)
		name = ns.Name()
		if !strings.HasPrefix(name, fmt.Sprintf("tapnet-%d-", os.Getpid())) || !exists(name) {
			t.Fatalf("namespace %q not created", name)
		}
		if out := ns.IP(t, "link", "show", "lo"); !strings.Contains(out, "UP") {
			t.Errorf("lo not up: %s", out)
		}
		if out := ns.Exec(t, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"); strings.TrimSpace(out) != "1" {
			t.Errorf("IPv6 not disabled: %q", out)
		}
		cmd = ns.Start(t, "sleep", "60")
		// `ip netns exec` switches namespace and then execs sleep in
		// place, so the pid shows up inside shortly.
		want := []string{fmt.Sprint(cmd.Process.Pid)}
		var pids []string
		for range 100 {
			if pids = strings.Fields(runOut(t, "ip", "netns", "pids", name)); slices.Equal(pids, want) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !slices.Equal(pids, want) {
			t.Errorf("pids in namespace %v, want %v", pids, want)
		}
	})
	if exists(name) {
		t.Errorf("namespace %s survived cleanup", name)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("background process %d survived cleanup: %v", cmd.Process.Pid, err)
	}
}

func runOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v %s", args, err, out)
	}
	return string(out)
}

func TestExecFailureFails(t *testing.T) {
	ns := netns.New(t)
	if out := ns.Exec(t, "sh", "-c", "echo hi"); out != "hi\n" {
		t.Errorf("Exec output %q", out)
	}
	// Run Exec of a failing command in a throwaway test and check it failed.
	ft := &fakeT{T: t}
	ft.run(func() { ns.Exec(ft, "false") })
	if !ft.failed {
		t.Error("Exec of a failing command did not fail the test")
	}
}

// fakeT records failing and skipping instead of ending the real test. Run
// code using it on its own goroutine: both end that goroutine.
type fakeT struct {
	*testing.T
	failed, skipped bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatal(...any)          { f.failed = true; runtime.Goexit() }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }
func (f *fakeT) Skip(...any)           { f.skipped = true; runtime.Goexit() }

func (f *fakeT) run(fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	<-done
}

func TestDo(t *testing.T) {
	ns := netns.New(t)
	ns.IP(t, "addr", "add", "192.0.2.1/32", "dev", "lo")
	addr := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 0}

	// The address exists only inside the namespace.
	if c, err := net.ListenUDP("udp4", addr); err == nil {
		c.Close()
		t.Fatal("192.0.2.1 is bindable outside the namespace; test assumption broken")
	}
	// Lock first, so that Do's own lock nests and the goroutine is still
	// on the same thread afterwards, where the namespace must be restored.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNS(t)

	var conn *net.UDPConn
	var inside uint64
	err := ns.Do(func() (err error) {
		inside = threadNS(t)
		conn, err = net.ListenUDP("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if inside == before {
		t.Error("Do did not switch the thread's namespace")
	}
	if after := threadNS(t); after != before {
		t.Errorf("thread namespace after Do = %d, want %d", after, before)
	}
	// The socket stays in the namespace: talk to it from a process there.
	port := conn.LocalAddr().(*net.UDPAddr).Port
	ns.Exec(t, "bash", "-c", fmt.Sprintf("echo -n ping > /dev/udp/192.0.2.1/%d", port))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}

	// t.FailNow inside fn still restores the thread.
	ft := &fakeT{T: t}
	ft.run(func() {
		runtime.LockOSThread()
		ns.Do(func() error { ft.Fatal("stop"); return nil })
		if threadNS(t) != before {
			t.Error("thread not restored after Goexit in fn")
		}
	})

	wantErr := errors.New("from fn")
	if err := ns.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

func TestParallelNamespaces(t *testing.T) {
	names := make(chan string, 4)
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			names <- netns.New(t).Name()
		})
	}
	t.Cleanup(func() {
		close(names)
		seen := map[string]bool{}
		for n := range names {
			if seen[n] {
				t.Errorf("namespace name %s reused", n)
			}
			seen[n] = true
		}
	})
}

func TestNewTAP(t *testing.T) {
	ns := netns.New(t)
	d := netns.NewTAP(t, ns, "198.51.100.1/24", tap.Options{MTU: 1280})
	out := ns.IP(t, "addr", "show", "dev", d.Name())
	for _, want := range []string{"198.51.100.1/24", "mtu 1280", "UP"} {
		if !strings.Contains(out, want) {
			t.Errorf("device config lacks %q:\n%s", want, out)
		}
	}
	if mtu := d.Info().MTU; mtu != 1280 {
		t.Errorf("MTU %d", mtu)
	}
	// It lives only in the namespace.
	if _, err := net.InterfaceByName(d.Name()); err == nil {
		t.Error("device visible in the host namespace")
	}
	if len(d.Name()) > 15 {
		t.Errorf("name %q too long", d.Name())
	}
}

// TestRequireRoot runs this test binary as an unprivileged user to check
// that RequireRoot skips normally and fails under CI=true.
func TestRequireRoot(t *testing.T) {
	if os.Getenv("NETNS_CHILD") != "" {
		netns.RequireRoot(t)
		t.Error("RequireRoot returned for a non-root user")
		return
	}
	netns.RequireRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The binary sits in a private build directory; copy it where nobody
	// may run it.
	dir, err := os.MkdirTemp("", "netns-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := dir + "/netns.test"
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(bin, "-test.run=^TestRequireRoot$", "-test.v")
		cmd.Env = append(os.Environ(), "NETNS_CHILD=1", "CI="+ci)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("CI unset: want a skip, got %v:\n%s", err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL")):
			t.Errorf("CI=true: want a failure, got %v:\n%s", err, out)
		}
	}
}

func TestNewIPv6(t *testing.T) {
	ns := netns.NewIPv6(t)
	for _, k := range []string{"disable_ipv6", "accept_dad", "accept_ra"} {
		if out := ns.Exec(t, "cat", "/proc/sys/net/ipv6/conf/default/"+k); strings.TrimSpace(out) != "0" {
			t.Errorf("%s = %q, want 0", k, out)
		}
	}
	if out := ns.IP(t, "-6", "addr", "show", "dev", "lo"); !strings.Contains(out, "::1/128") {
		t.Errorf("lo has no ::1: %s", out)
	}
}
