package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
)

func TestClusterCommandsOnASingleNode(t *testing.T) {
	dir, _ := startDev(t)
	sock := filepath.Join(dir, "admin.sock")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"node id", []string{"node", "id"}, 1, "not part of a cluster"},
		{"layout show", []string{"layout", "show"}, 1, "not part of a cluster"},
		{"node retire", []string{"node", "retire", "12D3KooWx"}, 1, "not part of a cluster"},
		{"node retire without id", []string{"node", "retire"}, 2, "exactly one node ID"},
		{"repair tables", []string{"repair", "tables"}, 1, "not part of a cluster"},
		{"repair blocks", []string{"repair", "blocks"}, 1, "not part of a cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, "", append([]string{"--admin-socket", sock}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: %+v", tc.args, r)
			}
		})
	}
}

func TestPrintCluster(t *testing.T) {
	cs := admin.ClusterStatus{
		Self: "12D3KooWAAAAAAAAAAAAAAAA", RF: 3, ReadQuorum: 2, WriteQuorum: 2, Ready: true, LayoutVersion: 4, NewestLayout: 5,
		Nodes: []admin.ClusterMember{
			{ID: "12D3KooWAAAAAAAAAAAAAAAA", Hostname: "nas", Addrs: []string{"/ip4/10.0.0.2/tcp/3901/p2p/x"}, Zone: "home", Capacity: 2 << 40,
				Tags: []string{"ssd"}, Up: true, Reachability: "self", Partitions: 154, DataAvail: 1 << 40, DataTotal: 2 << 40},
			{ID: "12D3KooWBBBBBBBBBBBBBBBB", Hostname: "pi", Addrs: []string{"/ip6/2001:db8::1/tcp/3901"}, Zone: "parents", Capacity: 1 << 40,
				Up: true, Reachability: "relayed", RTT: 42 * time.Millisecond, Partitions: 102},
			{ID: "12D3KooWCCCCCCCCCCCCCCCC", Hostname: "old", Zone: "friend", Capacity: 1 << 40, LastSeen: time.Now().Add(-90 * time.Second)},
		},
		Partitions: admin.PartitionHealth{Total: 256, WithQuorum: 256, AllUp: 100},
		Blocks:     []byte(`{}`),
		Tables:     []byte(`{"synced_version":4,"newest_version":5,"syncing":true,"sync_progress":0.25,"tables":[{"items":7},{"items":3}]}`),
		Rebalance:  admin.RebalanceStatus{Active: true, QueueLength: 12, Progress: 0.5, BytesMoved: 3 << 20, ETA: 90 * time.Second},
	}
	var b strings.Builder
	if err := printCluster(&b, cs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"HEALTHY NODES (2)", "12D3KooWAAAAAAAA", "10.0.0.2:3901", "[2001:db8::1]:3901", "ssd", "2.0 TiB", "1.0 TiB / 2.0 TiB (50.0%)",
		"relayed", "42ms", "reads use version 4, version 5 is syncing", "256 with quorum, 0 without quorum, 100 with every replica up",
		"resync queue 12", "syncing 25% (synced to v4, newest v5), 10 items", "rebalance 50%", "ETA 1m30s", "FAILED NODES (1)", "old", "1m30s ago",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
