package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entrepot/entrepot/daemon/admin/admintest"
	"github.com/entrepot/entrepot/daemon/config"
)

func readCreds(t *testing.T, dir string) DevCredentials {
	t.Helper()
	path := filepath.Join(dir, DevCredentialsFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"endpoint", "region", "access_key_id", "secret_access_key"} {
		if m[k] == "" {
			t.Errorf("credentials file lacks %q: %s", k, b)
		}
	}
	return DevCredentials{Endpoint: m["endpoint"], Region: m["region"], AccessKeyID: m["access_key_id"], SecretAccessKey: m["secret_access_key"]}
}

func TestEnsureDevKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := admintest.New()

	first, err := ensureDevKey(ctx, st, dir, "http://127.0.0.1:1", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readCreds(t, dir); got != first {
		t.Errorf("file %+v != returned %+v", got, first)
	}
	k, err := st.GetKey(ctx, first.AccessKeyID)
	if err != nil || k.Name != DevKeyName || !k.CanCreateBucket || k.Secret != first.SecretAccessKey {
		t.Fatalf("dev key in store: %+v, %v", k, err)
	}

	t.Run("restart reuses the key and updates the endpoint", func(t *testing.T) {
		again, err := ensureDevKey(ctx, st, dir, "http://127.0.0.1:2", "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		if again.AccessKeyID != first.AccessKeyID || again.SecretAccessKey != first.SecretAccessKey || again.Endpoint != "http://127.0.0.1:2" {
			t.Errorf("restart: %+v vs %+v", again, first)
		}
		if keys, _ := st.ListKeys(ctx); len(keys) != 1 {
			t.Errorf("restart created another key: %d keys", len(keys))
		}
		if readCreds(t, dir).Endpoint != "http://127.0.0.1:2" {
			t.Error("endpoint not rewritten")
		}
	})
	t.Run("wiped store re-imports the file's key", func(t *testing.T) {
		fresh := admintest.New()
		got, err := ensureDevKey(ctx, fresh, dir, "http://127.0.0.1:3", "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		k, err := fresh.GetKey(ctx, first.AccessKeyID)
		if err != nil || k.Secret != first.SecretAccessKey || !k.CanCreateBucket || got.AccessKeyID != first.AccessKeyID {
			t.Errorf("re-import: %+v, %v", k, err)
		}
	})
	t.Run("deleted file reuses the key named dev", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, DevCredentialsFile)); err != nil {
			t.Fatal(err)
		}
		got, err := ensureDevKey(ctx, st, dir, "http://127.0.0.1:4", "us-east-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessKeyID != first.AccessKeyID || got.SecretAccessKey != first.SecretAccessKey {
			t.Errorf("got %+v, want the existing dev key", got)
		}
	})
	t.Run("damaged file is an error", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, DevCredentialsFile), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ensureDevKey(ctx, st, dir, "x", "us-east-1"); err == nil {
			t.Error("damaged credentials accepted")
		}
	})
}

func TestPrintDevBannerHasEverything(t *testing.T) {
	var b bytes.Buffer
	dc := DevCredentials{Endpoint: "http://127.0.0.1:3900", Region: "us-east-1", AccessKeyID: "GKabc", SecretAccessKey: "sec123"}
	cfg, err := config.Dev(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	printDevBanner(&b, dc, cfg)
	for _, want := range []string{dc.Endpoint, dc.Region, dc.AccessKeyID, dc.SecretAccessKey, "aws configure", "rclone config create"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}
}
