package admin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/admin/admintest"
)

// fakeCluster records retirements and answers fixed documents.
type fakeCluster struct {
	retired []string
}

func (f *fakeCluster) NodeID(context.Context) (admin.NodeIdentity, error) {
	return admin.NodeIdentity{ID: "12D3KooWself", Addrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWself"}}, nil
}

func (f *fakeCluster) ClusterStatus(context.Context) (admin.ClusterStatus, error) {
	return admin.ClusterStatus{Self: "12D3KooWself", RF: 3, Ready: true, LayoutVersion: 2,
		Nodes: []admin.ClusterMember{{ID: "12D3KooWself", Zone: "a", Up: true, Reachability: "self"}}}, nil
}

func (f *fakeCluster) Layout(context.Context) (admin.LayoutInfo, error) {
	return admin.LayoutInfo{RF: 3, ReadVersion: 2, Versions: []admin.LayoutVersion{{Version: 2, ID: "v2-00"}},
		LastChange: &admin.LayoutChange{From: 1, To: 2, Moved: 10, Minimum: 9}}, nil
}

func (f *fakeCluster) RetireNode(_ context.Context, id string) error {
	if id != "12D3KooWother" {
		return admin.ErrUnknownNode
	}
	f.retired = append(f.retired, id)
	return nil
}

func (f *fakeCluster) MerkleRoots(_ context.Context, table string) (admin.MerkleRoots, error) {
	if table != "object" {
		return admin.MerkleRoots{}, admin.ErrUnknownTable
	}
	return admin.MerkleRoots{Table: table, Roots: map[string]string{"0": "ab"}}, nil
}

func (f *fakeCluster) SyncTables(context.Context) error { return admin.ErrUnavailable }

func (f *fakeCluster) Scrub(context.Context) (admin.ScrubResult, error) {
	return admin.ScrubResult{Checked: 4}, nil
}

func startWith(t *testing.T, c admin.Cluster) *adminclient.Client {
	t.Helper()
	api, err := admin.New(admin.Config{Store: admintest.New(), Cluster: c})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := admin.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.LocalHandler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return client(t, adminclient.Options{Socket: sock})
}

func TestClusterEndpoints(t *testing.T) {
	f := &fakeCluster{}
	c := startWith(t, f)
	cx := ctx(t)
	id, err := c.NodeID(cx)
	if err != nil || id.ID != "12D3KooWself" || len(id.Addrs) != 1 {
		t.Errorf("NodeID = %+v, %v", id, err)
	}
	st, err := c.ClusterStatus(cx)
	if err != nil || !st.Ready || st.RF != 3 || len(st.Nodes) != 1 {
		t.Errorf("ClusterStatus = %+v, %v", st, err)
	}
	l, err := c.Layout(cx)
	if err != nil || l.LastChange == nil || l.LastChange.Moved != 10 {
		t.Errorf("Layout = %+v, %v", l, err)
	}
	if err := c.RetireNode(cx, "12D3KooWother"); err != nil || len(f.retired) != 1 {
		t.Errorf("RetireNode = %v, retired %v", err, f.retired)
	}
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
		is     error
	}{
		{"retire unknown", func() error { return c.RetireNode(cx, "nobody") }, 404, "NoSuchNode", admin.ErrUnknownNode},
		{"retire without node", func() error { return c.RetireNode(cx, "") }, 400, admin.CodeInvalidRequest, nil},
		{"merkle unknown table", func() error { _, err := c.MerkleRoots(cx, "nope"); return err }, 404, "NoSuchTable", admin.ErrUnknownTable},
		{"sync unavailable", func() error { return c.SyncTables(cx) }, 503, "ServiceUnavailable", admin.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *adminclient.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("error = %v; want %d %s", err, tc.status, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
	m, err := c.MerkleRoots(cx, "object")
	if err != nil || m.Roots["0"] != "ab" {
		t.Errorf("MerkleRoots = %+v, %v", m, err)
	}
	sr, err := c.Scrub(cx)
	if err != nil || sr.Checked != 4 {
		t.Errorf("Scrub = %+v, %v", sr, err)
	}
}

func TestClusterEndpointsOnSingleNode(t *testing.T) {
	c := startWith(t, nil)
	cx := ctx(t)
	calls := map[string]func() error{
		"node id": func() error { _, err := c.NodeID(cx); return err },
		"status":  func() error { _, err := c.ClusterStatus(cx); return err },
		"layout":  func() error { _, err := c.Layout(cx); return err },
		"retire":  func() error { return c.RetireNode(cx, "x") },
		"merkle":  func() error { _, err := c.MerkleRoots(cx, "object"); return err },
		"sync":    func() error { return c.SyncTables(cx) },
		"scrub":   func() error { _, err := c.Scrub(cx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, admin.ErrNotClustered) {
				t.Errorf("error = %v; want NotClustered", err)
			}
		})
	}
}

func TestClusterEndpointsNeedTokenOverTCP(t *testing.T) {
	api, err := admin.New(admin.Config{Store: admintest.New(), Cluster: &fakeCluster{}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.RemoteHandler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	anon := client(t, adminclient.Options{URL: "http://" + l.Addr().String()})
	var ae *adminclient.Error
	if _, err := anon.Layout(ctx(t)); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("layout without token: %v", err)
	}
	authed := client(t, adminclient.Options{URL: "http://" + l.Addr().String(), Token: "tok"})
	if _, err := authed.Layout(ctx(t)); err != nil {
		t.Errorf("layout with token: %v", err)
	}
}
