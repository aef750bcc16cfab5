package clients

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const resticBin = "/usr/bin/restic"

func TestRestic(t *testing.T) {
	requireTool(t, resticBin)
	t.Parallel()
	env := clientEnv(t)
	work := t.TempDir()
	c := cluster.Credentials()
	bucket := bucketName(t)
	renv := append(env.Env,
		"RESTIC_REPOSITORY=s3:"+cluster.Node(0).Endpoint()+"/"+bucket+"/repo",
		"RESTIC_PASSWORD=entrepot-e2e",
		"AWS_ACCESS_KEY_ID="+c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+c.SecretAccessKey,
		"AWS_DEFAULT_REGION="+c.Region,
		"RESTIC_CACHE_DIR="+filepath.Join(env.Home, "cache"),
	)
	restic := func(args ...string) string {
		t.Helper()
		return run(t, renv, work, 4*time.Minute, resticBin, append([]string{"-o", "s3.region=" + c.Region}, args...)...)
	}
	// restic creates the bucket itself.
	restic("init")
	src := filepath.Join(work, "src")
	makeTree(t, src)
	writeFile(t, filepath.Join(src, "big/large.bin"), 20*mib+3, 60)
	restic("backup", "--host", "e2e", src)
	restic("check", "--read-data")

	// A second backup after changes; both snapshots restore exactly.
	first := hashTree(t, src)
	writeFile(t, filepath.Join(src, "a.txt"), 999, 61)
	if err := os.Remove(filepath.Join(src, "empty")); err != nil {
		t.Fatal(err)
	}
	restic("backup", "--host", "e2e", src)
	restic("check", "--read-data")

	var snaps []struct {
		ID   string `json:"id"`
		Time string `json:"time"`
	}
	if err := json.Unmarshal([]byte(restic("snapshots", "--json")), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	for i, want := range []map[string]string{first, hashTree(t, src)} {
		target := filepath.Join(work, "restore", snaps[i].ID)
		restic("restore", snaps[i].ID, "--target", target)
		// restic restores under the source's absolute path.
		got := hashTree(t, filepath.Join(target, strings.TrimPrefix(src, "/")))
		sameTree(t, "restic restore of snapshot "+snaps[i].ID, got, want)
	}
}
