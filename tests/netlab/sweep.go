package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sweep removes leftovers of crashed labs: every namespace named
// prefix-* (the exact prefix of the lab about to start) and every
// namespace named BasePrefix-<pid>-* whose pid is no longer alive. Live
// labs of other processes are left alone. Processes inside swept
// namespaces are killed; deleting a namespace also deletes its
// interfaces, nft tables and qdiscs (the lab creates none elsewhere).
func Sweep(ctx context.Context, prefix string, log *slog.Logger) error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var stale []string
	for _, e := range entries {
		if isStale(e.Name(), prefix, os.Getpid(), pidAlive) {
			stale = append(stale, e.Name())
		}
	}
	if len(stale) == 0 {
		return nil
	}
	if log != nil {
		log.Info("netlab: sweeping stale namespaces", "count", len(stale), "names", stale)
	}
	return removeNamespaces(ctx, stale, log)
}

// isStale reports whether namespace name is a leftover to sweep.
func isStale(name, prefix string, self int, alive func(int) bool) bool {
	if prefix != "" && strings.HasPrefix(name, prefix+"-") {
		return true
	}
	pid, ok := prefixPID(name)
	if !ok || pid == self {
		return false
	}
	return !alive(pid)
}

// prefixPID parses the pid out of BasePrefix-<pid>-<rest>.
func prefixPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, BasePrefix+"-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// pidAlive treats zombies as dead (PID 1 may reap them late).
func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// nsPIDs lists the processes whose network namespace is the file path.
func nsPIDs(path string) ([]int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(filepath.Join("/proc", p.Name(), "ns", "net"))
		if err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// removeNamespaces kills every process in the namespaces (SIGTERM, then
// SIGKILL after 1 s) and deletes them with one ip process.
func removeNamespaces(ctx context.Context, names []string, log *slog.Logger) error {
	var pids []int
	var existing []string
	for _, n := range names {
		path := filepath.Join(netnsDir, n)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		existing = append(existing, n)
		ps, err := nsPIDs(path)
		if err != nil {
			return err
		}
		pids = append(pids, ps...)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(time.Second)
	for _, pid := range pids {
		for pidAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if pidAlive(pid) {
			if log != nil {
				log.Warn("netlab: killing process", "pid", pid)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if len(existing) == 0 {
		return nil
	}
	var b strings.Builder
	for _, n := range existing {
		fmt.Fprintf(&b, "netns del %s\n", n)
	}
	return runIPArgs(ctx, "", b.String(), true)
}
