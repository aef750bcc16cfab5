package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// Host is one network namespace of the lab: a server, a router, the
// internet namespace or the WAN client.
type Host struct {
	// Name is the role inside the lab, e.g. "h1a", "r1", "wan", "client".
	Name string
	// NS is the full namespace name (lab prefix + "-" + Name).
	NS string
	// Addr is the host's primary IPv4 address (LAN address for servers,
	// WAN address for routers, 10.77.0.x for the internet and client).
	Addr netip.Addr
	// Gateway is the next hop of the host's default route (invalid when
	// the host has no default route, as for the internet namespace).
	Gateway netip.Addr

	lab *Lab
}

// NSPath is the bind-mounted namespace file, usable with nsenter --net=.
func (h *Host) NSPath() string { return filepath.Join(netnsDir, h.NS) }

// Command returns a command that runs name inside the host's network
// namespace (through nsenter, which is cheaper than `ip netns exec`), with
// WANPrefixEnv added to its environment. The caller starts it and must
// Wait for it; Close kills whatever is left in the lab's namespaces.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"--net=" + h.NSPath(), "--", name}, args...)
	cmd := exec.CommandContext(ctx, toolPath("nsenter"), full...)
	cmd.Env = labEnv()
	return cmd
}

// Run runs a command inside the namespace and returns its combined output.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %s in %s: %w: %s", name, h.Name, err, out)
	}
	return out, nil
}

// Do runs fn on a locked OS thread that has joined the host's network
// namespace, then switches the thread back. Sockets created by fn stay in
// the namespace and may be used from any goroutine afterwards; fn itself
// must not start goroutines that expect to be in the namespace.
func (h *Host) Do(fn func() error) error {
	return doInNS(h.NSPath(), fn)
}

func doInNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime destroys it when this
			// goroutine exits, so no other goroutine inherits the namespace.
			errc <- fmt.Errorf("setns back from %s: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Listen opens a listener (network "tcp", "tcp4") inside the namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, addr, h.Name, err)
	}
	return l, nil
}

// ListenPacket opens a packet socket (network "udp", "udp4") inside the namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, addr, h.Name, err)
	}
	return c, nil
}

// DialContext dials from inside the namespace.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, addr, h.Name, err)
	}
	return c, nil
}

// writeSysctl writes a /proc/sys value; call it inside Do.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(key))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s: %w", key, err)
	}
	return nil
}
