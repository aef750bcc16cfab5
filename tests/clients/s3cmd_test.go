package clients

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const s3cmdBin = "/usr/bin/s3cmd"

func TestS3cmd(t *testing.T) {
	requireTool(t, s3cmdBin)
	t.Parallel()
	env := clientEnv(t)
	work := t.TempDir()
	c := cluster.Credentials()
	host := (&url.URL{Host: cluster.Node(0).S3Addr()}).Host
	// host_bucket without %(bucket)s selects path-style requests; s3cmd 2.x
	// signs with SigV4 unless signature_v2 is set, using bucket_location as
	// the region.
	cfg := fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
bucket_location = %s
use_https = False
signature_v2 = False
check_ssl_certificate = False
guess_mime_type = False
multipart_chunk_size_mb = 5
max_retries = 2
`, c.AccessKeyID, c.SecretAccessKey, host, host, c.Region)
	conf := filepath.Join(env.Home, ".s3cfg")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s3cmd := func(args ...string) string {
		t.Helper()
		return run(t, env.Env, work, 3*time.Minute, s3cmdBin, append([]string{"-c", conf, "--no-progress"}, args...)...)
	}
	bucket := bucketName(t)
	s3cmd("mb", "s3://"+bucket)

	small := filepath.Join(work, "small.txt")
	writeFile(t, small, 4321, 50)
	big := filepath.Join(work, "big.bin")
	writeFile(t, big, 12*mib+1, 51) // 3 parts of 5 MiB chunks
	s3cmd("put", small, "s3://"+bucket+"/dir/small.txt")
	s3cmd("put", big, "s3://"+bucket+"/big.bin")

	ls := s3cmd("ls", "s3://"+bucket+"/")
	if !strings.Contains(ls, "s3://"+bucket+"/big.bin") || !strings.Contains(ls, "DIR") {
		t.Errorf("s3cmd ls:\n%s", ls)
	}
	la := s3cmd("ls", "--recursive", "s3://"+bucket+"/")
	if !strings.Contains(la, "s3://"+bucket+"/dir/small.txt") {
		t.Errorf("s3cmd ls --recursive:\n%s", la)
	}
	if !strings.Contains(la, "12582913") {
		t.Errorf("s3cmd ls lacks the multipart object's size:\n%s", la)
	}

	// get verifies the MD5 against the ETag for single-part objects.
	s3cmd("get", "s3://"+bucket+"/dir/small.txt", filepath.Join(work, "small.out"))
	sameFile(t, "s3cmd get small", filepath.Join(work, "small.out"), small)
	s3cmd("get", "s3://"+bucket+"/big.bin", filepath.Join(work, "big.out"))
	sameFile(t, "s3cmd get multipart", filepath.Join(work, "big.out"), big)

	tree := filepath.Join(work, "tree")
	makeTree(t, tree)
	s3cmd("sync", tree+"/", "s3://"+bucket+"/tree/")
	down := filepath.Join(work, "down")
	if err := os.MkdirAll(down, 0o755); err != nil {
		t.Fatal(err)
	}
	s3cmd("sync", "s3://"+bucket+"/tree/", down+"/")
	sameTree(t, "s3cmd sync round trip", hashTree(t, down), hashTree(t, tree))

	s3cmd("del", "s3://"+bucket+"/dir/small.txt")
	if la := s3cmd("ls", "--recursive", "s3://"+bucket+"/dir/"); strings.Contains(la, "small.txt") {
		t.Errorf("object still listed after s3cmd del:\n%s", la)
	}
	s3cmd("del", "--recursive", "--force", "s3://"+bucket+"/")
	s3cmd("rb", "s3://"+bucket)
}
