package admin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
	"github.com/entrepot/entrepot/daemon/admin/admintest"
	"github.com/entrepot/entrepot/daemon/model"
)

type server struct {
	store   *admintest.Store
	healthy *atomic.Bool
	socket  string
	url     string
}

// start serves the API on a real unix socket and a real TCP listener.
func start(t *testing.T, token, metricsToken string) server {
	t.Helper()
	st := admintest.New()
	var healthy atomic.Bool
	healthy.Store(true)
	api, err := admin.New(admin.Config{
		Store: st, Token: token, MetricsToken: metricsToken, Healthy: healthy.Load,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "entrepot_up 1\n") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ul, err := admin.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s1 := &http.Server{Handler: api.LocalHandler()}
	s2 := &http.Server{Handler: api.RemoteHandler()}
	go s1.Serve(ul)
	go s2.Serve(tl)
	t.Cleanup(func() { s1.Close(); s2.Close() })
	return server{store: st, healthy: &healthy, socket: sock, url: "http://" + tl.Addr().String()}
}

func client(t *testing.T, o adminclient.Options) *adminclient.Client {
	t.Helper()
	c, err := adminclient.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSocketMode(t *testing.T) {
	s := start(t, "", "")
	st, err := os.Stat(s.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, want socket 0600", st.Mode())
	}
	// A second listener on a live socket is refused.
	if _, err := admin.ListenUnix(s.socket); !errors.Is(err, admin.ErrSocketInUse) {
		t.Errorf("second ListenUnix: %v, want ErrSocketInUse", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // leaves a dead socket file behind
	l2, err := admin.ListenUnix(sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed on close: %v", err)
	}
	// A regular file in the way is not deleted.
	if err := os.WriteFile(sock, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ListenUnix(sock); err == nil {
		t.Error("ListenUnix replaced a regular file")
	}
}

func TestKeyAndBucketLifecycleOverSocket(t *testing.T) {
	s := start(t, "", "")
	c := client(t, adminclient.Options{Socket: s.socket})
	ctx := ctx(t)

	k, err := c.CreateKey(ctx, admin.KeyCreateRequest{Name: "alice", CanCreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.AccessKeyID, "GK") || k.SecretAccessKey == "" || !k.CanCreateBucket || k.Name != "alice" {
		t.Fatalf("created key: %+v", k)
	}
	list, err := c.ListKeys(ctx)
	if err != nil || len(list) != 1 || list[0].SecretAccessKey != "" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	info, err := c.KeyInfo(ctx, "alice", false)
	if err != nil || info.AccessKeyID != k.AccessKeyID || info.SecretAccessKey != "" {
		t.Fatalf("info by name: %+v, %v", info, err)
	}
	info, err = c.KeyInfo(ctx, k.AccessKeyID, true)
	if err != nil || info.SecretAccessKey != k.SecretAccessKey {
		t.Fatalf("info --show-secret: %+v, %v", info, err)
	}

	b, err := c.CreateBucket(ctx, admin.BucketCreateRequest{Name: "photos"})
	if err != nil || b.Name != "photos" || b.ID == "" {
		t.Fatalf("create bucket: %+v, %v", b, err)
	}
	if _, err := c.CreateBucket(ctx, admin.BucketCreateRequest{Name: "photos"}); !errors.Is(err, model.ErrBucketAlreadyExists) {
		t.Errorf("duplicate bucket: %v", err)
	}
	if _, err := c.CreateBucket(ctx, admin.BucketCreateRequest{Name: "x"}); !errors.Is(err, model.ErrInvalidBucketName) {
		t.Errorf("bad name: %v", err)
	}

	ki, err := c.Allow(ctx, admin.PermissionRequest{Key: "alice", Bucket: "photos", Read: true, Write: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ki.Buckets) != 1 || ki.Buckets[0].Bucket != "photos" || !ki.Buckets[0].Read || !ki.Buckets[0].Write || ki.Buckets[0].Owner {
		t.Fatalf("after allow: %+v", ki.Buckets)
	}
	ki, err = c.Deny(ctx, admin.PermissionRequest{Key: k.AccessKeyID, Bucket: "photos", Write: true})
	if err != nil || len(ki.Buckets) != 1 || !ki.Buckets[0].Read || ki.Buckets[0].Write {
		t.Fatalf("after deny write: %+v, %v", ki.Buckets, err)
	}
	bi, err := c.BucketInfo(ctx, "photos")
	if err != nil || bi.Stats == nil || len(bi.Keys) != 1 || bi.Keys[0].Name != "alice" || !bi.Keys[0].Read {
		t.Fatalf("bucket info: %+v, %v", bi, err)
	}
	if _, err := c.Allow(ctx, admin.PermissionRequest{Key: "alice", Bucket: "nope", Read: true}); !errors.Is(err, model.ErrNoSuchBucket) {
		t.Errorf("allow on missing bucket: %v", err)
	}
	if _, err := c.Allow(ctx, admin.PermissionRequest{Key: "alice", Bucket: "photos"}); err == nil {
		t.Error("allow without any permission flag succeeded")
	}

	no := false
	ki, err = c.SetKey(ctx, admin.KeySetRequest{Key: "alice", CanCreateBucket: &no})
	if err != nil || ki.CanCreateBucket {
		t.Fatalf("set: %+v, %v", ki, err)
	}

	s.store.Stats["photos"] = model.BucketStats{Objects: 1, Bytes: 10}
	if err := c.DeleteBucket(ctx, "photos"); !errors.Is(err, model.ErrBucketNotEmpty) {
		t.Errorf("delete non-empty bucket: %v", err)
	}
	s.store.Stats["photos"] = model.BucketStats{}
	if err := c.DeleteBucket(ctx, "photos"); err != nil {
		t.Fatal(err)
	}
	bl, err := c.ListBuckets(ctx)
	if err != nil || len(bl) != 0 {
		t.Fatalf("buckets after delete: %+v, %v", bl, err)
	}

	if _, err := c.DeleteKey(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyInfo(ctx, "alice", false); !errors.Is(err, model.ErrNoSuchAccessKey) {
		t.Errorf("info after delete: %v", err)
	}
}

func TestImportAndAmbiguousNames(t *testing.T) {
	s := start(t, "", "")
	c := client(t, adminclient.Options{Socket: s.socket})
	ctx := ctx(t)
	k, err := c.ImportKey(ctx, admin.KeyImportRequest{AccessKeyID: "GKimported", SecretAccessKey: "s3cr3t-value", Name: "twin"})
	if err != nil || k.AccessKeyID != "GKimported" || k.SecretAccessKey != "" {
		t.Fatalf("import: %+v, %v", k, err)
	}
	if _, err := c.ImportKey(ctx, admin.KeyImportRequest{AccessKeyID: "GKimported", SecretAccessKey: "other-secret", Name: "x"}); !errors.Is(err, model.ErrAccessKeyExists) {
		t.Errorf("re-import: %v", err)
	}
	if _, err := c.ImportKey(ctx, admin.KeyImportRequest{AccessKeyID: "GKnosecret"}); err == nil {
		t.Error("import without secret succeeded")
	}
	if _, err := c.CreateKey(ctx, admin.KeyCreateRequest{Name: "twin"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.KeyInfo(ctx, "twin", false)
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Code != admin.CodeAmbiguousKey || !errors.Is(err, admin.ErrAmbiguousKey) {
		t.Errorf("ambiguous name: %v", err)
	}
	if _, err := c.KeyInfo(ctx, "GKimported", false); err != nil {
		t.Errorf("by id: %v", err)
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTCPAuth(t *testing.T) {
	cases := []struct {
		name, token, metricsToken, path, send string
		want                                  int
	}{
		{"health needs nothing", "tok", "", "/health", "", 200},
		{"health without admin token configured", "", "", "/health", "", 200},
		{"status without token", "tok", "", "/v1/status", "", 401},
		{"status wrong token", "tok", "", "/v1/status", "nope", 401},
		{"status token prefix", "tok", "", "/v1/status", "to", 401},
		{"status right token", "tok", "", "/v1/status", "tok", 200},
		{"no token configured refuses API", "", "", "/v1/key/list", "", 403},
		{"no token configured refuses any bearer", "", "", "/v1/key/list", "anything", 403},
		{"no token configured serves metrics", "", "", "/metrics", "", 200},
		{"metrics need the admin token without a metrics token", "tok", "", "/metrics", "", 401},
		{"metrics with admin token and no metrics token", "tok", "", "/metrics", "tok", 200},
		{"metrics token only", "", "mtok", "/metrics", "mtok", 200},
		{"metrics token only, none sent", "", "mtok", "/metrics", "", 401},
		{"metrics token required", "tok", "mtok", "/metrics", "", 401},
		{"metrics token wrong", "tok", "mtok", "/metrics", "x", 401},
		{"metrics token right", "tok", "mtok", "/metrics", "mtok", 200},
		{"metrics with admin token", "tok", "mtok", "/metrics", "tok", 200},
		{"metrics token is not an admin token", "tok", "mtok", "/v1/status", "mtok", 401},
		{"unknown endpoint needs auth first", "tok", "", "/v1/nope", "", 401},
		{"unknown endpoint", "tok", "", "/v1/nope", "tok", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.token, tc.metricsToken)
			code, body := get(t, s.url+tc.path, tc.send)
			if code != tc.want {
				t.Errorf("GET %s = %d %s, want %d", tc.path, code, body, tc.want)
			}
		})
	}
}

func TestTCPClientWithToken(t *testing.T) {
	s := start(t, "sekrit", "")
	ctx := ctx(t)
	c := client(t, adminclient.Options{URL: s.url, Token: "sekrit"})
	if _, err := c.CreateBucket(ctx, admin.BucketCreateRequest{Name: "tcp-bucket"}); err != nil {
		t.Fatal(err)
	}
	bad := client(t, adminclient.Options{URL: s.url, Token: "wrong"})
	_, err := bad.ListBuckets(ctx)
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("wrong token: %v", err)
	}
	// The socket needs no token.
	if _, err := client(t, adminclient.Options{Socket: s.socket}).ListBuckets(ctx); err != nil {
		t.Error(err)
	}
}

func TestHealthFollowsReadiness(t *testing.T) {
	s := start(t, "", "")
	c := client(t, adminclient.Options{URL: s.url})
	ctx := ctx(t)
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	s.healthy.Store(false)
	err := c.Health(ctx)
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("unhealthy: %v", err)
	}
	st, err := client(t, adminclient.Options{Socket: s.socket}).Status(ctx)
	if err != nil || st.Healthy || st.Node.Hostname != "fakehost" {
		t.Errorf("status: %+v, %v", st, err)
	}
}

func TestBadRequests(t *testing.T) {
	s := start(t, "", "")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.socket)
	}}}
	cases := []struct {
		name, method, path, body string
		want                     int
		code                     string
		msg                      string // a part of the message; "" = not checked
	}{
		{"malformed json", "POST", "/v1/key/create", "{", 400, admin.CodeInvalidRequest, ""},
		{"unknown field", "POST", "/v1/key/create", `{"nmae":"x"}`, 400, admin.CodeInvalidRequest, ""},
		{"trailing data", "POST", "/v1/key/create", `{"name":"x"} {}`, 400, admin.CodeInvalidRequest, ""},
		{"missing bucket name", "POST", "/v1/bucket/create", `{}`, 400, admin.CodeInvalidRequest, ""},
		{"missing key ref", "GET", "/v1/key/info", "", 400, admin.CodeInvalidRequest, ""},
		{"bad show_secret", "GET", "/v1/key/info?key=a&show_secret=maybe", "", 400, admin.CodeInvalidRequest, ""},
		{"missing bucket", "GET", "/v1/bucket/info?bucket=nope", "", 404, "NoSuchBucket", ""},
		{"wrong method", "GET", "/v1/key/create", "", 404, admin.CodeNoSuchEndpoint, ""},
		{"import without secret", "POST", "/v1/key/import", `{"access_key_id":"GK1"}`, 400, admin.CodeInvalidRequest, "secret_access_key is required"},
		{"allow without flags", "POST", "/v1/key/allow", `{"key":"a","bucket":"b"}`, 400, admin.CodeInvalidRequest, "at least one of read, write, owner"},
		{"retire without node", "POST", "/v1/node/retire", `{}`, 400, admin.CodeInvalidRequest, "node is required"},
		{"retire alone", "POST", "/v1/node/retire", `{"node":"n"}`, 409, "NotClustered", "not part of a cluster"},
		{"merkle without table", "GET", "/v1/cluster/merkle", "", 400, admin.CodeInvalidRequest, "table is required"},
		{"sync alone", "POST", "/v1/cluster/sync", "", 409, "NotClustered", "not part of a cluster"},
		{"website without bucket", "POST", "/v1/bucket/website", `{"allow":true}`, 400, admin.CodeInvalidRequest, "bucket is required"},
		{"website on a store without config", "POST", "/v1/bucket/website", `{"bucket":"b","allow":true}`, 501, "NotImplemented", "this store has no bucket configuration"},
		{"quota without bucket", "POST", "/v1/bucket/quota", `{"max_size":-1}`, 400, admin.CodeInvalidRequest, "bucket is required"},
		{"negative quota", "POST", "/v1/bucket/quota", `{"bucket":"b","max_size":-1}`, 400, admin.CodeInvalidRequest, "must not be negative"},
		{"lifecycle bad now", "POST", "/v1/lifecycle/run", `{"now":"soon"}`, 400, admin.CodeInvalidRequest, "now:"},
		{"lifecycle on a store without it", "POST", "/v1/lifecycle/run", `{}`, 501, "NotImplemented", `"message": "this store has no lifecycle"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(b), `"code": "`+tc.code+`"`) || !strings.Contains(string(b), tc.msg) {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, b, tc.want, tc.code)
			}
		})
	}
}

func TestInternalErrorsAreHidden(t *testing.T) {
	s := start(t, "", "")
	s.store.Err = errors.New("disk on fire at /secret/path")
	_, err := client(t, adminclient.Options{Socket: s.socket}).ListKeys(ctx(t))
	var ae *adminclient.Error
	if !errors.As(err, &ae) || ae.Status != 500 || strings.Contains(ae.Message, "fire") {
		t.Errorf("internal error: %v", err)
	}
}
