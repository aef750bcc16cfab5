package s3e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/tests/harness"
)

// TestAdminCLIAndPermissions drives `entrepot --admin-socket ... key/bucket/
// status` against the running node and checks that per-key bucket
// permissions are enforced on the S3 side.
func TestAdminCLIAndPermissions(t *testing.T) {
	ctx := ctxT(t)
	n := cluster.Node(0)
	dev := cluster.Credentials()

	var keys struct {
		Keys []struct {
			AccessKeyID     string `json:"access_key_id"`
			CanCreateBucket bool   `json:"can_create_bucket"`
		} `json:"keys"`
	}
	out, err := n.CLI(ctx, "key", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &keys); err != nil {
		t.Fatalf("key list --json: %v: %s", err, out)
	}
	found := false
	for _, k := range keys.Keys {
		if k.AccessKeyID == dev.AccessKeyID {
			found = k.CanCreateBucket
		}
	}
	if !found {
		t.Fatalf("dev key %s missing from key list or cannot create buckets: %s", dev.AccessKeyID, out)
	}
	if strings.Contains(string(out), dev.SecretAccessKey) {
		t.Fatal("key list prints the secret")
	}
	var status struct {
		Healthy    bool   `json:"healthy"`
		S3Endpoint string `json:"s3_endpoint"`
		Region     string `json:"region"`
	}
	out, err = n.CLI(ctx, "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &status); err != nil || !status.Healthy || status.Region != dev.Region {
		t.Fatalf("status --json: %v: %s", err, out)
	}

	// A new key sees nothing until it is allowed on a bucket.
	bucket := newBucket(t)
	put(t, bucket, "obj", []byte("shared"))
	out, err = n.CLI(ctx, "key", "create", "e2e-reader", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.AccessKeyID == "" || created.SecretAccessKey == "" {
		t.Fatalf("key create --json: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = n.CLI(ctxT(t), "key", "delete", created.AccessKeyID) })
	reader := harness.NewS3Client(n.Endpoint(), harness.Credentials{Region: dev.Region, AccessKeyID: created.AccessKeyID, SecretAccessKey: created.SecretAccessKey}, nil)

	_, err = reader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	wantErr(t, "read without permission", err, http.StatusForbidden, "AccessDenied")
	_, err = reader.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("e2e-reader-may-not")})
	wantErr(t, "create bucket without the flag", err, http.StatusForbidden, "AccessDenied")

	if _, err := n.CLI(ctx, "bucket", "allow", bucket, "--key", created.AccessKeyID, "--read"); err != nil {
		t.Fatal(err)
	}
	out2, err := reader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	if err != nil {
		t.Fatalf("read with read permission: %v", err)
	}
	out2.Body.Close()
	before := snapshot(t, bucket)
	_, err = reader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Body: strings.NewReader("overwritten")})
	wantErr(t, "write with read-only permission", err, http.StatusForbidden, "AccessDenied")
	_, err = reader.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	wantErr(t, "delete with read-only permission", err, http.StatusForbidden, "AccessDenied")
	unchanged(t, "refused writes", bucket, before)

	lb, err := reader.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != bucket {
		t.Errorf("reader lists %d buckets, want only %s", len(lb.Buckets), bucket)
	}

	if _, err := n.CLI(ctx, "key", "delete", created.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	_, err = reader.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj")})
	wantErr(t, "read with a deleted key", err, http.StatusForbidden, "InvalidAccessKeyId")
}

// TestHealthAndMetrics checks the admin listener's /health and /metrics.
func TestHealthAndMetrics(t *testing.T) {
	base := "http://" + cluster.Node(0).AdminAddr()
	for _, c := range []struct {
		path, want string
	}{
		{"/health", ""},
		{"/metrics", "entrepot_"},
	} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_, _ = io.Copy(&sb, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(sb.String(), c.want) {
			t.Errorf("GET %s: %d, body contains %q: %v", c.path, resp.StatusCode, c.want, strings.Contains(sb.String(), c.want))
		}
	}
}
