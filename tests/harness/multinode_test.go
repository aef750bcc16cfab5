package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/config"
)

// The rendered node configs parse and say what the spec asked.
func TestRenderClusterConfig(t *testing.T) {
	c := &MultiCluster{opts: ClusterOptions{Bin: "/bin/true", Dir: t.TempDir(), RF: 3, BlockSize: "64K",
		GossipInterval: 300 * time.Millisecond, PingInterval: 500 * time.Millisecond, LogLevel: "info"}, secret: randomHex(32)}
	specs := []NodeSpec{
		{Zone: "a", Tags: []string{"nas"}},
		{Zone: "b", Gateway: true},
		{Zone: "c", Capacity: "2G", Decommission: true, Replaces: "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
		{Zone: "d", WrongSecret: true},
		{Zone: "e", NoSecret: true},
	}
	for _, s := range specs {
		if _, err := c.newMember(s); err != nil {
			t.Fatal(err)
		}
	}
	c.nodes[0].id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	cases := []struct {
		name  string
		i     int
		check func(config.Config) bool
	}{
		{"bootstrap node", 0, func(k config.Config) bool {
			return k.Zone == "a" && k.Capacity == 1<<30 && len(k.RPC.Bootstrap) == 0 && k.Tags[0] == "nas" && !k.RPC.MDNS &&
				k.RPC.GossipInterval.D() == 300*time.Millisecond && k.BlockSize == 64<<10 && k.ReplicationFactor == 3
		}},
		{"gateway bootstraps from node 0", 1, func(k config.Config) bool {
			return k.Gateway && k.Capacity == 0 && len(k.RPC.Bootstrap) == 1 && strings.HasSuffix(k.RPC.Bootstrap[0], "/p2p/"+c.nodes[0].id)
		}},
		{"decommission and replaces", 2, func(k config.Config) bool {
			return k.Decommission && k.Replaces != "" && k.Capacity == 2<<30 && strings.HasSuffix(k.RPC.SecretFile, SecretFile)
		}},
		{"wrong secret", 3, func(k config.Config) bool {
			return k.RPC.SecretFile != "" && !strings.HasSuffix(k.RPC.SecretFile, SecretFile)
		}},
		{"no secret", 4, func(k config.Config) bool { return k.RPC.SecretFile == "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := c.renderConfig(tc.i)
			k, err := config.Parse([]byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			if !tc.check(k) {
				t.Errorf("unexpected config:\n%s", text)
			}
		})
	}
}
