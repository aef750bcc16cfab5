package nix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ensureEnv is a fake daemon state plus the generated ensure script.
type ensureEnv struct {
	state, creds, fake string
}

func newEnsureEnv(t *testing.T) ensureEnv {
	t.Helper()
	needTool(t, "jq")
	needTool(t, "bash")
	dir := t.TempDir()
	e := ensureEnv{
		state: filepath.Join(dir, "state"),
		creds: filepath.Join(dir, "creds"),
		fake:  filepath.Join(repoRoot(t), "tests/nix/testdata/fake-entrepot.sh"),
	}
	for _, d := range []string{e.state, e.creds} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"alice", "bob"} {
		if err := os.WriteFile(filepath.Join(e.creds, "key-"+k), []byte("secret-of-"+k), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// script renders the ensure script for a user configuration.
func (e ensureEnv) script(t *testing.T, cfg string) string {
	t.Helper()
	expr := `let l = import ` + filepath.Join(repoRoot(t), "nixos-module/lib.nix") + `; in l.ensureScript {
	  cli = l.shellArg ` + nixString(e.fake) + ` + " --admin-socket /run/entrepot/admin.sock";
	  jq = "jq"; credentialsDir = ` + nixString(e.creds) + `; readyTimeout = 3; } (l.withDefaults (` + cfg + `))`
	var s string
	if err := evalJSON(t, expr, &s); err != nil {
		t.Fatalf("render ensure script: %v", err)
	}
	return s
}

// run executes a script and returns the commands the fake CLI received.
func (e ensureEnv) run(t *testing.T, script string, env ...string) ([]string, error) {
	t.Helper()
	calls := filepath.Join(e.state, "calls")
	_ = os.Remove(calls)
	f := filepath.Join(t.TempDir(), "ensure.sh")
	if err := os.WriteFile(f, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, e.state, append([]string{"FAKE_STATE=" + e.state, "CREDENTIALS_DIRECTORY="}, env...), "bash", f)
	b, _ := os.ReadFile(calls)
	return strings.Split(strings.TrimSpace(string(b)), "\n"), err
}

func (e ensureEnv) list(t *testing.T, what string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.state, what))
	if err != nil {
		t.Fatal(err)
	}
	l := strings.Fields(string(b))
	slices.Sort(l)
	return l
}

func (e ensureEnv) seed(t *testing.T, what string, items ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.state, what), []byte(strings.Join(items, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

const ensureCfg = `{ zone = "a"; capacity = "1T";
  ensureBuckets = [ "photos" "site" ];
  ensureKeys.alice = { accessKeyId = "GKalice"; secretKeyFile = "/run/keys/alice";
    permissions.photos = { read = true; write = true; };
    permissions.site = { read = true; owner = true; };
    permissions.ghost = { read = true; }; };
  ensureKeys.bob = { accessKeyId = "GKbob"; secretKeyFile = "/run/keys/bob"; allowCreateBucket = true; };
  PRUNE }`

func TestEnsureScriptIdempotent(t *testing.T) {
	e := newEnsureEnv(t)
	s := e.script(t, strings.Replace(ensureCfg, "PRUNE", "", 1))

	first, err := e.run(t, s)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	wantFirst := []string{
		"bucket create photos",
		"bucket create site",
		"key import --name alice --secret-file " + e.creds + "/key-alice GKalice",
		"key set --can-create-bucket=false GKalice",
		"bucket allow --read --write --key GKalice photos",
		"bucket deny --owner --key GKalice photos",
		"bucket allow --read --owner --key GKalice site",
		"bucket deny --write --key GKalice site",
		"key import --name bob --secret-file " + e.creds + "/key-bob GKbob",
		"key set --can-create-bucket=true GKbob",
	}
	for _, w := range wantFirst {
		if !slices.Contains(first, w) {
			t.Errorf("first run did not call %q; calls:\n  %s", w, strings.Join(first, "\n  "))
		}
	}
	for _, c := range first {
		if strings.HasSuffix(c, " ghost") {
			t.Errorf("permission applied to a bucket that does not exist: %q", c)
		}
	}
	if got := e.list(t, "buckets"); !slices.Equal(got, []string{"photos", "site"}) {
		t.Errorf("buckets after first run = %v", got)
	}
	if got := e.list(t, "keys"); !slices.Equal(got, []string{"GKalice", "GKbob"}) {
		t.Errorf("keys after first run = %v", got)
	}

	second, err := e.run(t, s)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	for _, c := range second {
		if strings.Contains(c, " create ") || strings.HasPrefix(c, "bucket create") || strings.HasPrefix(c, "key import") || strings.Contains(c, "delete") {
			t.Errorf("second run changed existing state: %q", c)
		}
	}
	if got := e.list(t, "buckets"); !slices.Equal(got, []string{"photos", "site"}) {
		t.Errorf("buckets after second run = %v", got)
	}
}

func TestEnsureScriptPrune(t *testing.T) {
	cases := []struct {
		name        string
		prune       string
		wantBuckets []string
		wantKeys    []string
	}{
		{"undeclared kept by default", "", []string{"old", "photos", "site"}, []string{"GKalice", "GKbob", "GKold"}},
		{"undeclared deleted with pruneUndeclared", "pruneUndeclared = true;", []string{"photos", "site"}, []string{"GKalice", "GKbob"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnsureEnv(t)
			e.seed(t, "buckets", "old", "photos")
			e.seed(t, "keys", "GKold")
			if _, err := e.run(t, e.script(t, strings.Replace(ensureCfg, "PRUNE", tc.prune, 1))); err != nil {
				t.Fatalf("run: %v", err)
			}
			if got := e.list(t, "buckets"); !slices.Equal(got, tc.wantBuckets) {
				t.Errorf("buckets = %v, want %v", got, tc.wantBuckets)
			}
			if got := e.list(t, "keys"); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("keys = %v, want %v", got, tc.wantKeys)
			}
		})
	}
}

// TestEnsureScriptConcurrentCreate: another node creating the same bucket
// or importing the same key between list and create is not an error; a
// create that fails for another reason is.
func TestEnsureScriptConcurrentCreate(t *testing.T) {
	cases := []struct {
		name    string
		env     string
		wantErr bool
	}{
		{"created by another node meanwhile", "FAKE_RACE=1", false},
		{"creation fails", "FAKE_BROKEN=1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnsureEnv(t)
			_, err := e.run(t, e.script(t, strings.Replace(ensureCfg, "PRUNE", "", 1)), tc.env)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got := e.list(t, "buckets"); !slices.Equal(got, []string{"photos", "site"}) {
				t.Errorf("buckets = %v", got)
			}
			if got := e.list(t, "keys"); !slices.Equal(got, []string{"GKalice", "GKbob"}) {
				t.Errorf("keys = %v", got)
			}
		})
	}
}

// TestEnsureScriptFailsWhenDaemonDown: the readiness wait is bounded.
func TestEnsureScriptFailsWhenDaemonDown(t *testing.T) {
	e := newEnsureEnv(t)
	s := e.script(t, `{ zone = "a"; capacity = "1T"; ensureBuckets = [ "photos" ]; }`)
	s = strings.Replace(s, "cli() {", "cli() { [ \"$1\" = status ] && return 1;", 1)
	_, err := e.run(t, s)
	if err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("want a bounded readiness failure, got %v", err)
	}
}

// TestEnsureScriptRealDaemon applies the ensure script twice to a real
// `entrepot server --dev` through its admin socket.
func TestEnsureScriptRealDaemon(t *testing.T) {
	needTool(t, "jq")
	bin, why := entrepotBin(t)
	if bin == "" {
		skip(t, why)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "server", "--dev", "--data-dir", filepath.Join(dir, "dev"),
		"--s3-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	sock := filepath.Join(dir, "dev", "admin.sock")
	creds := filepath.Join(dir, "creds")
	if err := os.MkdirAll(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, "key-alice"), []byte(strings.Repeat("ab", 32)+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cfg := `{ zone = "a"; capacity = "1T"; ensureBuckets = [ "photos" "site" ];
	  ensureKeys.alice = { accessKeyId = "GKalice0000000000000000"; secretKeyFile = "/run/keys/alice";
	    permissions.photos = { read = true; write = true; }; permissions.site.read = true; }; }`
	expr := `let l = import ` + filepath.Join(repoRoot(t), "nixos-module/lib.nix") + `; in l.ensureScript {
	  cli = l.shellArg ` + nixString(bin) + ` + " --admin-socket " + l.shellArg ` + nixString(sock) + `;
	  jq = "jq"; credentialsDir = ` + nixString(creds) + `; readyTimeout = 30; } (l.withDefaults (` + cfg + `))`
	var script string
	if err := evalJSON(t, expr, &script); err != nil {
		t.Fatalf("render ensure script: %v", err)
	}
	f := filepath.Join(dir, "ensure.sh")
	if err := os.WriteFile(f, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		out, err := run(t, dir, []string{"CREDENTIALS_DIRECTORY="}, "bash", f)
		if err != nil {
			t.Fatalf("run %d: %v\n%s\nserver log:\n%s", i, err, out, log.String())
		}
		if i == 2 && (strings.Contains(out, "creating") || strings.Contains(out, "importing")) {
			t.Errorf("second run changed state:\n%s", out)
		}
	}
	info, err := run(t, dir, nil, bin, "--admin-socket", sock, "key", "info", "--json", "GKalice0000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Name    string
		Buckets []map[string]any
	}
	if err := json.Unmarshal([]byte(info), &k); err != nil {
		t.Fatalf("decode key info %q: %v", info, err)
	}
	if k.Name != "alice" || len(k.Buckets) != 2 {
		t.Errorf("key info after ensure = %s", info)
	}
	buckets, err := run(t, dir, nil, bin, "--admin-socket", sock, "bucket", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{`"photos"`, `"site"`} {
		if !strings.Contains(buckets, b) {
			t.Errorf("bucket list lacks %s: %s", b, buckets)
		}
	}
}
