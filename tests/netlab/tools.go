package netlab

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// RequiredTools are the programs New runs: iproute2, nftables, util-linux
// nsenter and miniupnpd (Debian: iproute2 nftables util-linux
// miniupnpd-nftables).
var RequiredTools = []string{"ip", "nft", "nsenter", "miniupnpd"}

// TestTools are the programs the lab's own tests use (Debian: miniupnpc).
var TestTools = []string{"upnpc"}

// OptionalTools help when debugging a lab by hand; nothing in the package
// needs them (RTT is measured in Go, NAT-PMP has a Go client).
var OptionalTools = []string{"ping", "natpmpc", "iperf3", "tc"}

// MissingTools returns which of RequiredTools are not installed.
func MissingTools() []string { return missing(RequiredTools) }

// CheckTools reports every missing tool per group; it installs nothing.
func CheckTools() (required, test, optional []string) {
	return missing(RequiredTools), missing(TestTools), missing(OptionalTools)
}

func missing(tools []string) []string {
	var out []string
	for _, t := range tools {
		if toolPath(t) == t {
			out = append(out, t)
		}
	}
	return out
}

// Skip skips t unless the lab can run here: root, the required tools and
// the extra tools given, and `ip netns` support.
func Skip(t testing.TB, extra ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: skipping, needs root (network namespaces)")
	}
	if m := missing(append(append([]string{}, RequiredTools...), extra...)); len(m) > 0 {
		t.Skipf("netlab: skipping, missing tools: %s (Debian: iproute2 nftables util-linux miniupnpd-nftables miniupnpc)", strings.Join(m, ", "))
	}
}

// sbinDirs are searched after PATH: root tools live there and a test's
// PATH may lack them.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// toolPath resolves a tool through PATH, then sbinDirs.
func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range sbinDirs {
		if st, err := os.Stat(dir + "/" + name); err == nil && st.Mode()&0o111 != 0 {
			return dir + "/" + name
		}
	}
	return name
}

// labEnv is the environment of commands run inside the lab: PATH extended
// with sbinDirs, plus WANPrefixEnv.
func labEnv() []string {
	env := os.Environ()
	path := os.Getenv("PATH")
	for _, dir := range sbinDirs {
		if !slices.Contains(strings.Split(path, ":"), dir) {
			path += ":" + dir
		}
	}
	env = append(env, "PATH="+path, WANPrefixEnv+"="+WANPrefix.String())
	return env
}

// NewT builds a lab for a test: it skips (see Skip) when the lab cannot
// run, fails the test on a build error and closes the lab in t.Cleanup.
func NewT(t testing.TB, cfg Config) *Lab {
	t.Helper()
	Skip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := l.Close(); err != nil {
			t.Errorf("netlab close: %v", err)
		}
		t.Logf("netlab %s: up in %v, down in %v", l.Prefix, l.SetupTime, time.Since(start))
	})
	return l
}
