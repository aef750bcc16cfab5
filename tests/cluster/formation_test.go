package cluster

import (
	"context"
	"testing"
	"time"

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

func TestFormation(t *testing.T) {
	start := time.Now()
	c := harness.StartClusterT(t, harness.ClusterOptions{Nodes: fiveNodes()})
	t.Logf("5 nodes formed one layout in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	checkZones(ctx, t, c, 3)
}
