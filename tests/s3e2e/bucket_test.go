package s3e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/entrepot/entrepot/tests/harness"
)

func TestDevCredentialsFile(t *testing.T) {
	n := cluster.Node(0)
	c, mode, err := harness.ReadCredentials(filepath.Join(n.DataDir(), harness.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if mode != 0o600 {
		t.Errorf("dev-credentials.json mode %o, want 600", mode)
	}
	if c.Region != "us-east-1" {
		t.Errorf("region %q, want us-east-1", c.Region)
	}
	if c.Endpoint != n.Endpoint() && c.Endpoint != n.Endpoint()+"/" {
		t.Errorf("endpoint %q, want %q", c.Endpoint, n.Endpoint())
	}
	if _, err := os.Stat(n.AdminSocket()); err != nil {
		t.Errorf("admin socket: %v", err)
	}
}

func TestBucketLifecycle(t *testing.T) {
	ctx := ctxT(t)
	cl := client()
	name := newBucket(t)

	lb, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
		if b.CreationDate == nil || b.CreationDate.IsZero() {
			t.Errorf("bucket %s has no creation date", aws.ToString(b.Name))
		}
	}
	if !slices.Contains(names, name) || !slices.IsSorted(names) {
		t.Fatalf("ListBuckets %v: want sorted and containing %s", names, name)
	}
	if _, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("head bucket: %v", err)
	}
	loc, err := cl.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("get bucket location: %v", err)
	}
	if lc := string(loc.LocationConstraint); lc != "" && lc != "us-east-1" {
		t.Errorf("location %q, want empty or us-east-1", lc)
	}

	// A bucket with an object cannot be deleted, and stays as it was.
	put(t, name, "keep", []byte("still here"))
	before := snapshot(t, name)
	_, err = cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	wantErr(t, "delete non-empty bucket", err, http.StatusConflict, "BucketNotEmpty")
	unchanged(t, "delete non-empty bucket", name, before)
}

func TestBucketErrors(t *testing.T) {
	ctx := ctxT(t)
	cl := client()
	missing := "e2e-no-such-bucket-4242"

	_, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(missing)})
	wantErr(t, "head missing bucket", err, http.StatusNotFound)
	_, err = cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(missing)})
	wantErr(t, "delete missing bucket", err, http.StatusNotFound, "NoSuchBucket")
	_, err = cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(missing)})
	wantErr(t, "list missing bucket", err, http.StatusNotFound, "NoSuchBucket")
	_, err = cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(missing), Key: aws.String("k")})
	wantErr(t, "get from missing bucket", err, http.StatusNotFound, "NoSuchBucket")

	for _, bad := range []string{"ab", "Upper-Case", "under_score", "-leading", "a..b", "192.168.1.1"} {
		_, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bad)})
		wantErr(t, "create bucket "+bad, err, http.StatusBadRequest, "InvalidBucketName")
	}

	// Creating an existing bucket again: us-east-1 historically answers 200
	// to its owner; otherwise BucketAlreadyOwnedByYou (409).
	name := newBucket(t)
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		wantErr(t, "create existing bucket", err, http.StatusConflict, "BucketAlreadyOwnedByYou", "BucketAlreadyExists")
	}

	// Deleting an empty bucket works and it disappears.
	tmp := "e2e-delete-me-" + name[len(name)-6:]
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(tmp)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(tmp)}); err != nil {
		t.Fatalf("delete empty bucket: %v", err)
	}
	_, err = cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(tmp)})
	wantErr(t, "head deleted bucket", err, http.StatusNotFound)
}
