package nix_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

// TestEnsureScenarioRealDaemon walks the declarative VM test's scenario
// (base, more, same again, fewer, prune, base) with the ensure script
// against a real `entrepot server --dev` through its admin socket.
func TestEnsureScenarioRealDaemon(t *testing.T) {
	needTool(t, "nix-instantiate")
	needTool(t, "jq")
	bin, why := entrepotBin(t)
	if bin == "" {
		skip(t, why)
	}
	dir := t.TempDir()
	sock, log := startDevServer(t, bin, filepath.Join(dir, "dev"))
	creds := filepath.Join(dir, "creds")
	if err := os.MkdirAll(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"tester": strings.Repeat("ab", 32), "backup": strings.Repeat("cd", 32)} {
		if err := os.WriteFile(filepath.Join(creds, "key-"+k), []byte(v+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	const tester, backup = "GKtest0123456789abcdef01", "GKbackup0123456789abcdef"
	cli := func(args ...string) string {
		t.Helper()
		out, err := run(t, dir, nil, bin, append([]string{"--admin-socket", sock}, args...)...)
		if err != nil {
			t.Fatalf("entrepot %v: %v\nserver log:\n%s", args, err, log.String())
		}
		return out
	}
	state := func() (buckets, keys []string, perms map[string]string) {
		t.Helper()
		var bl struct{ Buckets []struct{ Name string } }
		if err := json.Unmarshal([]byte(cli("bucket", "list", "--json")), &bl); err != nil {
			t.Fatal(err)
		}
		for _, b := range bl.Buckets {
			buckets = append(buckets, b.Name)
		}
		var kl struct {
			Keys []struct {
				AccessKeyID string `json:"access_key_id"`
			}
		}
		if err := json.Unmarshal([]byte(cli("key", "list", "--json")), &kl); err != nil {
			t.Fatal(err)
		}
		perms = map[string]string{}
		for _, k := range kl.Keys {
			keys = append(keys, k.AccessKeyID)
			var ki struct {
				Buckets []struct {
					Bucket             string
					Read, Write, Owner bool
				}
			}
			if err := json.Unmarshal([]byte(cli("key", "info", "--json", k.AccessKeyID)), &ki); err != nil {
				t.Fatal(err)
			}
			for _, b := range ki.Buckets {
				f := ""
				for _, x := range []struct {
					on bool
					c  string
				}{{b.Read, "r"}, {b.Write, "w"}, {b.Owner, "o"}} {
					if x.on {
						f += x.c
					}
				}
				perms[k.AccessKeyID+"/"+b.Bucket] = f
			}
		}
		slices.Sort(buckets)
		slices.Sort(keys)
		return buckets, keys, perms
	}

	const base = `ensureBuckets = [ "photos" "docs" ];
	  ensureKeys.tester = { accessKeyId = "GKtest0123456789abcdef01"; secretKeyFile = "/k"; permissions.photos = { read = true; write = true; }; };`
	const more = `ensureBuckets = [ "photos" "docs" "music" ];
	  ensureKeys.tester = { accessKeyId = "GKtest0123456789abcdef01"; secretKeyFile = "/k"; permissions.photos.read = true; permissions.music.read = true; };
	  ensureKeys.backup = { accessKeyId = "GKbackup0123456789abcdef"; secretKeyFile = "/k"; allowCreateBucket = true; };`
	const fewer = `ensureBuckets = [ "photos" ];
	  ensureKeys.tester = { accessKeyId = "GKtest0123456789abcdef01"; secretKeyFile = "/k"; permissions.photos = { read = true; write = true; }; };`
	steps := []struct {
		name, decl string
		setup      func()
		buckets    []string
		keys       []string // besides the dev server's own key, unless pruned
		prunesDev  bool
		perms      map[string]string
	}{
		{name: "base", decl: base, buckets: []string{"docs", "photos"}, keys: []string{tester},
			perms: map[string]string{tester + "/photos": "rw"}},
		{name: "more", decl: more, setup: func() { cli("bucket", "create", "manual") },
			buckets: []string{"docs", "manual", "music", "photos"}, keys: []string{backup, tester},
			perms: map[string]string{tester + "/photos": "r", tester + "/music": "r"}},
		{name: "more again", decl: more, buckets: []string{"docs", "manual", "music", "photos"}, keys: []string{backup, tester},
			perms: map[string]string{tester + "/photos": "r", tester + "/music": "r"}},
		{name: "fewer keeps undeclared", decl: fewer, buckets: []string{"docs", "manual", "music", "photos"}, keys: []string{backup, tester},
			perms: map[string]string{tester + "/photos": "rw", tester + "/music": "r"}},
		{name: "prune", decl: fewer + " pruneUndeclared = true;", buckets: []string{"photos"}, keys: []string{tester}, prunesDev: true,
			perms: map[string]string{tester + "/photos": "rw"}},
		{name: "base again", decl: base, buckets: []string{"docs", "photos"}, keys: []string{tester}, prunesDev: true,
			perms: map[string]string{tester + "/photos": "rw"}},
	}
	_, devKeys, _ := state()
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		expr := `let l = import ` + filepath.Join(repoRoot(t), "nixos-module/lib.nix") + `; in l.ensureScript {
		  cli = l.shellArg ` + nixString(bin) + ` + " --admin-socket " + l.shellArg ` + nixString(sock) + `;
		  jq = "jq"; credentialsDir = ` + nixString(creds) + `; readyTimeout = 30; } (l.withDefaults { zone = "a"; capacity = "1T"; ` + st.decl + ` })`
		var script string
		if err := evalJSON(t, expr, &script); err != nil {
			t.Fatalf("%s: render ensure script: %v", st.name, err)
		}
		f := filepath.Join(dir, "ensure.sh")
		if err := os.WriteFile(f, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, dir, []string{"CREDENTIALS_DIRECTORY="}, "bash", f)
		if err != nil {
			t.Fatalf("%s: %v\n%s\nserver log:\n%s", st.name, err, out, log.String())
		}
		if st.name == "more again" && (strings.Contains(out, "creating") || strings.Contains(out, "importing")) {
			t.Errorf("%s: a repeated declaration changed state:\n%s", st.name, out)
		}
		buckets, keys, perms := state()
		wantKeys := slices.Clone(st.keys)
		if !st.prunesDev {
			wantKeys = append(wantKeys, devKeys...)
		}
		slices.Sort(wantKeys)
		if !slices.Equal(buckets, st.buckets) {
			t.Errorf("%s: buckets = %v, want %v", st.name, buckets, st.buckets)
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: keys = %v, want %v", st.name, keys, wantKeys)
		}
		for kb, want := range st.perms {
			if perms[kb] != want {
				t.Errorf("%s: permissions %s = %q, want %q (all: %v)", st.name, kb, perms[kb], want, perms)
			}
		}
	}
}
