package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const rcloneBin = "/usr/bin/rclone"

func TestRclone(t *testing.T) {
	requireTool(t, rcloneBin)
	t.Parallel()
	env := clientEnv(t)
	work := t.TempDir()
	c := cluster.Credentials()
	conf := filepath.Join(env.Home, "rclone.conf")
	cfg := fmt.Sprintf("[e2e]\ntype = s3\nprovider = Other\naccess_key_id = %s\nsecret_access_key = %s\nendpoint = %s\nregion = %s\nforce_path_style = true\n",
		c.AccessKeyID, c.SecretAccessKey, cluster.Node(0).Endpoint(), c.Region)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bucket := bucketName(t)
	rclone := func(args ...string) string {
		t.Helper()
		// Multipart above 5 MiB so the 12 MiB file goes in parts.
		base := []string{"--config", conf, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1", "--low-level-retries", "2"}
		return run(t, env.Env, work, 3*time.Minute, rcloneBin, append(base, args...)...)
	}
	tree := filepath.Join(work, "tree")
	makeTree(t, tree)
	writeFile(t, filepath.Join(tree, "multipart.bin"), 12*mib+5, 40)
	remote := "e2e:" + bucket + "/tree"

	rclone("mkdir", "e2e:"+bucket)
	rclone("sync", tree, remote)
	rclone("check", tree, remote)               // sizes and MD5 (ETag) of each file
	rclone("check", "--download", tree, remote) // byte by byte
	down := filepath.Join(work, "down")
	rclone("copy", remote, down)
	sameTree(t, "rclone copy back", hashTree(t, down), hashTree(t, tree))

	// Change, add and delete files; sync must converge.
	writeFile(t, filepath.Join(tree, "a.txt"), 200, 41)
	writeFile(t, filepath.Join(tree, "new/added.bin"), 70000, 42)
	if err := os.Remove(filepath.Join(tree, "inline.bin")); err != nil {
		t.Fatal(err)
	}
	rclone("sync", tree, remote)
	rclone("check", "--download", tree, remote)
	down2 := filepath.Join(work, "down2")
	rclone("sync", remote, down2)
	sameTree(t, "rclone after incremental sync", hashTree(t, down2), hashTree(t, tree))

	rclone("purge", "e2e:"+bucket)
}
