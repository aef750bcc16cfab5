package labe2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/tests/netlab"
)

// TestNATDoubleNATRouterWrites: behind a double NAT (the home router's
// miniupnpd reports no external address and answers AddPortMapping with
// 501), the node detects it on the first probe and then writes to the
// router rarely: the test counts the port-mapping requests miniupnpd logs
// for LABE2E_DNAT_WATCH (default 30 s; natbench.sh DNAT_WATCH=6m for the figure)
// and asserts at most one write per natpunch DoubleNATWriteInterval
// (5 min) after the first attempt, plus one of slack.
func TestNATDoubleNATRouterWrites(t *testing.T) {
	SkipUnlessLab(t)
	watch := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LABE2E_DNAT_WATCH")); err == nil && d > 0 {
		watch = d
	}
	lab := netlab.NewT(t, netlab.Config{Homes: []netlab.HomeConfig{
		{Servers: 1, UPnP: netlab.IGDv2, DoubleNAT: true},
	}})
	r := lab.Homes[0].Router
	n := StartEntrepot(t, lab.Homes[0].Servers[0], EntOpts{Zone: "dnat", SecretFile: WriteSecret(t), UPnP: true})
	d := WaitFor(t, "double NAT detected", 20*time.Second, func() bool {
		return strings.Contains(n.log(), "double_nat=true")
	})
	t.Logf("double NAT in the log %v after the node was healthy", d)
	// miniupnpd -d logs "SOAPAction: <service>#<action>" for each SOAP
	// request it serves (and, for a mapping, an "AddPortMapping: ext port"
	// line too); the write actions are AddPortMapping and AddAnyPortMapping.
	writes := func() (n int, sample string) {
		for _, line := range strings.Split(r.UPnPLog(), "\n") {
			if strings.Contains(line, "SOAPAction:") && (strings.Contains(line, "#AddPortMapping") || strings.Contains(line, "#AddAnyPortMapping")) {
				n++
				sample = line
			}
		}
		return n, sample
	}
	defer func() {
		var lines []string
		for _, line := range strings.Split(r.UPnPLog(), "\n") {
			if strings.Contains(line, "Mapping") || strings.Contains(line, "SOAP") {
				lines = append(lines, line)
			}
		}
		t.Logf("miniupnpd's mapping lines:\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}()
	time.Sleep(5 * time.Second) // the first attempts (every port, lease fallbacks)
	first, sample := writes()
	time.Sleep(watch)
	total, _ := writes()
	allowed := 1 + int(watch/(5*time.Minute)) // natpunch's gate: one write per 5 min per node, plus one of slack
	t.Logf("FIGURE double NAT (2 ports mapped: rpc, s3): %d router writes in the first 5 s, %d more in the next %v (last: %q)",
		first, total-first, watch, strings.TrimSpace(sample))
	if total-first > allowed {
		t.Fatalf("%d router writes in %v after the first attempts, want ≤ %d (one per 5 min)", total-first, watch, allowed)
	}
	if first == 0 {
		t.Fatalf("no AddPortMapping in miniupnpd's log: cannot count writes\n%s", Tail(r.UPnPLog(), 30))
	}
}
