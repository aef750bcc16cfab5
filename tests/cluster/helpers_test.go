package cluster

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/tests/harness"
)

// checkZones asserts, from every node's `entrepot layout show --json`, that each
// partition has RF replicas in distinct zones (zones >= RF) and that all
// nodes agree.
func checkZones(ctx context.Context, t *testing.T, c *harness.MultiCluster, rf int) {
	t.Helper()
	var ref string
	for i := range c.Len() {
		if !c.Node(i).Running() {
			continue
		}
		out, err := c.Node(i).CLI(ctx, "layout", "show", "--json")
		if err != nil {
			t.Fatalf("node %d layout show: %v", i, err)
		}
		var l admin.LayoutInfo
		if err := json.Unmarshal(out, &l); err != nil {
			t.Fatalf("node %d layout show --json: %v\n%s", i, err, out)
		}
		if len(l.Versions) == 0 {
			t.Fatalf("node %d: no layout", i)
		}
		v := l.Versions[len(l.Versions)-1]
		if ref == "" {
			ref = v.ID
		} else if v.ID != ref {
			t.Errorf("node %d has layout %s, others %s", i, v.ID, ref)
		}
		zone := map[string]string{}
		for _, n := range v.Nodes {
			zone[n.ID] = n.Zone
		}
		if len(v.Partitions) != 256 {
			t.Fatalf("layout %s has %d partitions", v.ID, len(v.Partitions))
		}
		for p, reps := range v.Partitions {
			zs := map[string]bool{}
			for _, id := range reps {
				zs[zone[id]] = true
			}
			if len(reps) != rf || len(zs) != rf {
				t.Errorf("node %d layout %s partition %d: replicas %v in zones %v", i, v.ID, p, reps, zs)
				return
			}
		}
	}
}

// waitFor polls cond every 250 ms until it holds or ctx ends (then fails with its last explanation).
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached: %s", what, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
