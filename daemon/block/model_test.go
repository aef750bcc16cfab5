package block_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/cluster"
	"github.com/entrepot/entrepot/daemon/layout"
	"github.com/entrepot/entrepot/daemon/model"
	"github.com/entrepot/entrepot/daemon/p2p"
	"github.com/entrepot/entrepot/daemon/rpc"
	"github.com/entrepot/entrepot/daemon/table"
)

const secret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

type mnode struct {
	id    string
	host  *p2p.Host
	store *model.Store
}

// TestModelOverReplication runs the storage model on replicated tables and
// blocks (3 storage nodes in 3 zones and a gateway, RF 3): an object put
// through the gateway is readable from every node, its blocks sit on the
// storage nodes only, and each replica's reference count comes from the
// block_ref entries the table replication delivered.
func TestModelOverReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("four in-process nodes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k, err := p2p.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*mnode
	roles := map[string]layout.Role{}
	croles := map[string]cluster.RoleEntry{}
	var lay *layout.Layout
	view := func(self string) cluster.View {
		return cluster.View{Self: self, RF: 3, Layouts: []*layout.Layout{lay}, Read: lay, Roles: croles}
	}
	for i := range 4 {
		h, err := p2p.New(ctx, p2p.Config{IdentityFile: filepath.Join(t.TempDir(), "key"), Secret: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		n := &mnode{id: h.ID().String(), host: h}
		role := layout.Role{Zone: fmt.Sprintf("z%d", i), Capacity: 1 << 30}
		if i == 3 {
			role = layout.Role{Zone: "z0"} // gateway
		}
		roles[n.id] = role
		croles[n.id] = cluster.RoleEntry{Role: role}
		nodes = append(nodes, n)
	}
	if lay, err = layout.Compute(nil, roles, 3); err != nil {
		t.Fatal(err)
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.host.Libp2p().Peerstore().AddAddrs(b.host.Libp2p().ID(), b.host.Libp2p().Addrs(), time.Hour)
			}
		}
	}
	for _, n := range nodes {
		rn, err := rpc.New(rpc.Config{Host: n.host.Libp2p(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		id := n.id
		repl, err := table.NewReplicator(table.ReplicatorConfig{RPC: rn, View: func() cluster.View { return view(id) }, MarkSynced: func(uint64) {}})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		st, err := model.Open(ctx, model.Config{MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"), NoFsync: true, Replicator: repl})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Blocks().EnableReplication(block.ReplicationConfig{RPC: rn, View: func() cluster.View { return view(id) }, ScrubInterval: -1}); err != nil {
			t.Fatal(err)
		}
		go repl.Run(ctx)
		n.store = st
	}
	gw := nodes[3]
	key, err := nodes[0].store.CreateKey(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].store.CreateBucket(ctx, key.ID, "bkt"); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+1234)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.store.PutObject(ctx, model.PutInput{Bucket: "bkt", Key: "obj", Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		meta, err := n.store.HeadObject(ctx, "bkt", "obj")
		if err != nil {
			t.Fatalf("head via %s: %v", n.id, err)
		}
		rc, err := n.store.OpenObject(ctx, meta, 0, meta.Size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read via %s: %d bytes, err %v", n.id, len(got), err)
		}
	}
	// Every storage node holds the 4 blocks with one reference each; the gateway none.
	hashes := blockHashes(data, 1<<20)
	for i, n := range nodes {
		for _, h := range hashes {
			deadline := time.Now().Add(10 * time.Second)
			for {
				has, _ := n.store.Blocks().Has(h)
				count, _ := n.store.Blocks().RefCount(h)
				ok := has && count == 1
				if i == 3 {
					ok = !has && count == 0
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d: block %s has=%v refcount=%d", i, h, has, count)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	if got := slices.Compact(slices.Clone(hashes)); len(got) != 4 {
		t.Fatalf("%d distinct blocks, want 4", len(got))
	}
	// Deleting the object releases the references on every replica.
	if err := nodes[1].store.DeleteObject(ctx, "bkt", "obj"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes[:3] {
		for _, h := range hashes {
			for {
				count, _ := n.store.Blocks().RefCount(h)
				if count == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("block %s still referenced %d times after delete", h, count)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

func blockHashes(data []byte, size int) []block.Hash {
	var out []block.Hash
	for len(data) > 0 {
		n := min(size, len(data))
		out = append(out, block.Sum(data[:n]))
		data = data[n:]
	}
	return out
}
