package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/tests/harness"
)

// fiveNodes is the cluster: 5 nodes in 3 zones.
func fiveNodes() []harness.NodeSpec {
	return []harness.NodeSpec{
		{Zone: "a", Tags: []string{"nas"}}, {Zone: "a"},
		{Zone: "b"}, {Zone: "b"},
		{Zone: "c"},
	}
}

// TestFormationAndCLI: 5 nodes form one layout with every partition in 3
// zones, and the CLI shows members, node ids and the layout.
func TestFormationAndCLI(t *testing.T) {
	start := time.Now()
	c := harness.StartClusterT(t, harness.ClusterOptions{Nodes: fiveNodes()})
	t.Logf("5 nodes formed one layout in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	checkZones(ctx, t, c, 3)

	out, err := c.Node(2).CLI(ctx, "node", "id")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if lines[0] != c.ID(2) || len(lines) < 2 || !strings.HasSuffix(lines[1], "/p2p/"+c.ID(2)) {
		t.Errorf("node id printed %q; want the id then bootstrap addresses", out)
	}

	// Every node eventually sees all 5 up (pings run every 500 ms).
	waitFor(ctx, t, "all nodes see 5 healthy members", func() (bool, string) {
		out, err := c.Node(0).CLI(ctx, "status")
		if err != nil {
			return false, err.Error()
		}
		s := string(out)
		return strings.Contains(s, "HEALTHY NODES (5)") && !strings.Contains(s, "FAILED NODES") &&
			strings.Contains(s, "256 with quorum"), s
	})
	out, err = c.Node(0).CLI(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("entrepot status on node 0:\n%s", out)
	for i := range c.Len() {
		if !strings.Contains(string(out), c.ID(i)[:16]) {
			t.Errorf("status does not list node %d (%s)", i, c.ID(i))
		}
	}
	for _, want := range []string{"node0", "nas", "direct", "Layout", "factor 3, read quorum 2, write quorum 2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status lacks %q", want)
		}
	}
	out, err = c.Node(1).CLI(ctx, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var sj struct {
		Node struct {
			NodeID string `json:"node_id"`
		} `json:"node"`
		Cluster admin.ClusterStatus `json:"cluster"`
	}
	if err := json.Unmarshal(out, &sj); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if sj.Node.NodeID != c.ID(1) || len(sj.Cluster.Nodes) != 5 || !sj.Cluster.Ready {
		t.Errorf("status --json: node %s, %d members, ready %v", sj.Node.NodeID, len(sj.Cluster.Nodes), sj.Cluster.Ready)
	}
	out, err = c.Node(3).CLI(ctx, "layout", "show")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("entrepot layout show on node 3:\n%s", out)
	if !strings.Contains(string(out), "LAYOUT VERSION") || !strings.Contains(string(out), "PARTITIONS") {
		t.Errorf("layout show output unexpected")
	}
}
