package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon"
	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/config"
)

// clusterConfig is testConfig in cluster mode: a secret, RPC on a free
// loopback port, no mDNS, a declared capacity.
func clusterConfig(t *testing.T, dir string, rf int) config.Config {
	t.Helper()
	cfg := testConfig(t, dir)
	cfg.DevDir = "" // no dev key: a node without a layout cannot write one
	cfg.ReplicationFactor = rf
	cfg.Capacity = 1 << 30
	cfg.RPC.Listen = "/ip4/127.0.0.1/tcp/0"
	cfg.RPC.SecretFile = filepath.Join(dir, "secret")
	cfg.RPC.Secret = []byte("0123456789abcdef0123456789abcdef")
	cfg.RPC.MDNS = false
	cfg.RPC.GossipInterval = config.Duration(200 * time.Millisecond)
	cfg.RPC.PingInterval = config.Duration(200 * time.Millisecond)
	return cfg
}

func socketClient(t *testing.T, socket string) *adminclient.Client {
	t.Helper()
	c, err := adminclient.New(adminclient.Options{Socket: socket, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterModeAlone(t *testing.T) {
	cases := []struct {
		name      string
		rf        int
		ready     bool
		s3Status  int
		withQuora int
	}{
		{"rf 1: one node is a layout", 1, true, http.StatusOK, 256},
		{"rf 3: no layout, S3 answers 503", 3, false, http.StatusServiceUnavailable, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := clusterConfig(t, dir, tc.rf)
			r := startDaemon(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cl := socketClient(t, r.d.AdminSocket())
			st, err := cl.ClusterStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Ready != tc.ready || st.RF != tc.rf || len(st.Nodes) != 1 || !st.Nodes[0].Self || st.Partitions.WithQuorum != tc.withQuora {
				t.Errorf("cluster status %+v", st)
			}
			id, err := cl.NodeID(ctx)
			if err != nil || id.ID != st.Self || len(id.Addrs) == 0 || !strings.HasSuffix(id.Addrs[0], "/p2p/"+id.ID) {
				t.Errorf("node id %+v, %v", id, err)
			}
			ns, err := cl.Status(ctx)
			if err != nil || ns.Node.NodeID != id.ID {
				t.Errorf("the store's node id %q differs from the p2p id %q (%v)", ns.Node.NodeID, id.ID, err)
			}
			resp, err := http.Get("http://" + r.d.S3Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Without credentials a ready node refuses the anonymous list (403); an unready one says 503 first.
			if tc.s3Status == http.StatusServiceUnavailable {
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "<Code>ServiceUnavailable</Code>") {
					t.Errorf("S3 without layout: %d %s", resp.StatusCode, body)
				}
			} else if resp.StatusCode == http.StatusServiceUnavailable {
				t.Errorf("S3 with a layout answered 503: %s", body)
			}
			l, err := cl.Layout(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ready && (len(l.Versions) != 1 || len(l.Versions[0].Partitions) != 256 || l.Versions[0].Nodes[0].Partitions != 256) {
				t.Errorf("layout %+v", l)
			}
		})
	}
}

func TestClusterModeRetireUnknown(t *testing.T) {
	dir := t.TempDir()
	r := startDaemon(t, clusterConfig(t, dir, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := socketClient(t, r.d.AdminSocket()).RetireNode(ctx, "12D3KooWnobody")
	if !errors.Is(err, admin.ErrUnknownNode) {
		t.Errorf("retire unknown node: %v", err)
	}
}

func TestSingleNodeIsNotClustered(t *testing.T) {
	dir := t.TempDir()
	r := startDaemon(t, testConfig(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := socketClient(t, r.d.AdminSocket()).ClusterStatus(ctx); !errors.Is(err, admin.ErrNotClustered) {
		t.Errorf("cluster status on a dev node: %v", err)
	}
}

func TestClusterModeNeedsTheSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := clusterConfig(t, dir, 1)
	cfg.RPC.Secret = nil // secret_file set but never read
	d, err := daemon.New(context.Background(), cfg, daemon.Options{})
	if err == nil {
		d.Close()
	}
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "rpc.secret_file") {
		t.Errorf("New without the secret: %v", err)
	}
}
