package clients

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const awsBin = "/usr/bin/aws"

func TestAWSCLI(t *testing.T) {
	requireTool(t, awsBin)
	t.Parallel()
	env := clientEnv(t)
	work := t.TempDir()
	bucket := bucketName(t)
	ep := cluster.Node(0).Endpoint()
	aws := func(args ...string) string {
		t.Helper()
		return run(t, env.Env, work, 4*time.Minute, awsBin, append([]string{"--endpoint-url", ep, "--no-cli-pager"}, args...)...)
	}
	aws("s3", "mb", "s3://"+bucket)

	// 100 MiB: awscli switches to multipart (8 MiB parts) above 8 MiB.
	big := filepath.Join(work, "big.bin")
	writeFile(t, big, 100*mib, 1)
	aws("s3", "cp", big, "s3://"+bucket+"/big.bin")
	var head struct {
		ContentLength int64
		ETag          string
	}
	if err := json.Unmarshal([]byte(aws("s3api", "head-object", "--bucket", bucket, "--key", "big.bin")), &head); err != nil {
		t.Fatal(err)
	}
	if head.ContentLength != 100*mib || !strings.HasSuffix(head.ETag, `-13"`) {
		t.Errorf("head of big.bin: length %d etag %s, want 104857600 and a 13-part ETag", head.ContentLength, head.ETag)
	}
	aws("s3", "cp", "s3://"+bucket+"/big.bin", filepath.Join(work, "big.out"))
	sameFile(t, "aws s3 cp round trip (100 MiB multipart)", filepath.Join(work, "big.out"), big)

	// sync up, then down into an empty directory.
	tree := filepath.Join(work, "tree")
	makeTree(t, tree)
	aws("s3", "sync", tree, "s3://"+bucket+"/tree/")
	down := filepath.Join(work, "down")
	aws("s3", "sync", "s3://"+bucket+"/tree/", down)
	sameTree(t, "aws s3 sync round trip", hashTree(t, down), hashTree(t, tree))
	// A second sync uploads nothing.
	if out := aws("s3", "sync", tree, "s3://"+bucket+"/tree/"); strings.Contains(out, "upload:") {
		t.Errorf("second sync uploaded again:\n%s", out)
	}
	ls := aws("s3", "ls", "--recursive", "s3://"+bucket+"/tree/")
	if n := strings.Count(ls, "\n"); n != len(hashTree(t, tree)) {
		t.Errorf("aws s3 ls listed %d lines, want %d:\n%s", n, len(hashTree(t, tree)), ls)
	}

	// s3api object calls.
	small := filepath.Join(work, "small.bin")
	writeFile(t, small, 5000, 2)
	aws("s3api", "put-object", "--bucket", bucket, "--key", "api/small.bin", "--body", small, "--content-type", "application/x-small",
		"--metadata", "origin=awscli")
	aws("s3api", "get-object", "--bucket", bucket, "--key", "api/small.bin", filepath.Join(work, "small.out"))
	sameFile(t, "s3api get-object", filepath.Join(work, "small.out"), small)
	var h2 struct {
		ContentType string
		Metadata    map[string]string
	}
	if err := json.Unmarshal([]byte(aws("s3api", "head-object", "--bucket", bucket, "--key", "api/small.bin")), &h2); err != nil {
		t.Fatal(err)
	}
	if h2.ContentType != "application/x-small" || h2.Metadata["origin"] != "awscli" {
		t.Errorf("head-object: %+v", h2)
	}
	var lst struct {
		Contents []struct{ Key string }
		KeyCount int
	}
	if err := json.Unmarshal([]byte(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/dir/")), &lst); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range lst.Contents {
		keys = append(keys, c.Key)
	}
	want := []string{"tree/dir/one block.bin", "tree/dir/sub/deeper/ünï cødé.txt", "tree/dir/sub/multi.bin"}
	if !slices.Equal(keys, want) {
		t.Errorf("list-objects-v2 keys %q, want %q", keys, want)
	}

	// Presigned GET.
	url := strings.TrimSpace(aws("s3", "presign", "s3://"+bucket+"/api/small.bin", "--expires-in", "300"))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	orig, _ := os.ReadFile(small)
	if resp.StatusCode != http.StatusOK || string(body) != string(orig) {
		t.Fatalf("presigned GET: status %d, %d bytes (want %d)", resp.StatusCode, len(body), len(orig))
	}

	var del struct {
		Deleted []struct{ Key string }
		Errors  []any
	}
	if err := json.Unmarshal([]byte(aws("s3api", "delete-objects", "--bucket", bucket, "--delete",
		`{"Objects":[{"Key":"api/small.bin"},{"Key":"big.bin"}]}`)), &del); err != nil {
		t.Fatal(err)
	}
	if len(del.Deleted) != 2 || len(del.Errors) != 0 {
		t.Errorf("delete-objects: %+v", del)
	}
	if _, err := tryRun(env.Env, work, time.Minute, awsBin, "--endpoint-url", ep, "s3api", "head-object", "--bucket", bucket, "--key", "big.bin"); err == nil {
		t.Error("big.bin still there after delete-objects")
	}
	aws("s3", "rm", "--recursive", "s3://"+bucket+"/")
	aws("s3", "rb", "s3://"+bucket)
}
