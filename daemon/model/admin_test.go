package model

import (
	"errors"
	"testing"
)

func TestValidBucketName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"my-bucket.v2", true},
		{"a1", false},
		{"ab", false},
		{string(make([]byte, 64)), false},
		{"Upper", false},
		{"-abc", false},
		{"abc-", false},
		{"a..b", false},
		{"a.-b", false},
		{"192.168.1.1", false},
		{"under_score", false},
		{"1.2.3", true},
		{"xn--abc", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidBucketName(tc.name); got != tc.ok {
				t.Fatalf("ValidBucketName(%q) = %v, want %v", tc.name, got, tc.ok)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	k, err := e.s.CreateKey(e.ctx, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.ID) != 26 || k.ID[:2] != "GK" || len(k.Secret) != 64 {
		t.Fatalf("created key %q / secret of %d chars", k.ID, len(k.Secret))
	}
	got, err := e.s.GetKey(e.ctx, k.ID)
	if err != nil || got.Secret != k.Secret || got.Name != "laptop" {
		t.Fatalf("GetKey = %+v, %v", got, err)
	}
	cases := []struct {
		name, id, secret string
		want             error
	}{
		{"import ok", "GKimported01", "secretsecretsecret", nil},
		{"duplicate", "GKimported01", "othersecret123", ErrAccessKeyExists},
		{"empty id", "", "secretsecret", ErrInvalidArgument},
		{"bad id", "GK bad", "secretsecret", ErrInvalidArgument},
		{"short secret", "GKok000", "x", ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.ImportKey(e.ctx, tc.id, tc.secret, "n")
			if !errors.Is(err, tc.want) {
				t.Fatalf("ImportKey err = %v, want %v", err, tc.want)
			}
		})
	}
	ks, err := e.s.ListKeys(e.ctx)
	if err != nil || len(ks) != 2 {
		t.Fatalf("ListKeys = %d keys, %v", len(ks), err)
	}
	for _, kk := range ks {
		if kk.Secret != "" {
			t.Fatal("ListKeys leaked a secret")
		}
	}
	if err := e.s.SetKeyCanCreateBucket(e.ctx, k.ID, true); err != nil {
		t.Fatal(err)
	}
	e.bucket("perm-bucket")
	if err := e.s.SetPermission(e.ctx, k.ID, "perm-bucket", Perm{Read: true}); err != nil {
		t.Fatal(err)
	}
	got, _ = e.s.GetKey(e.ctx, k.ID)
	b, _ := e.s.GetBucket(e.ctx, "perm-bucket")
	if !got.CanCreateBucket || got.Perms[b.ID] != (Perm{Read: true}) {
		t.Fatalf("key after updates: %+v", got)
	}
	if err := e.s.SetPermission(e.ctx, k.ID, "perm-bucket", Perm{}); err != nil {
		t.Fatal(err)
	}
	if got, _ = e.s.GetKey(e.ctx, k.ID); len(got.Perms) != 0 {
		t.Fatalf("all-false permission not removed: %+v", got.Perms)
	}
	if err := e.s.SetPermission(e.ctx, k.ID, "nope-bucket", Perm{Read: true}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("perm on missing bucket: %v", err)
	}
	if err := e.s.DeleteKey(e.ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetKey(e.ctx, k.ID); !errors.Is(err, ErrNoSuchAccessKey) {
		t.Fatalf("deleted key: %v", err)
	}
	if err := e.s.DeleteKey(e.ctx, k.ID); !errors.Is(err, ErrNoSuchAccessKey) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	e := newEnv(t)
	k, _ := e.s.CreateKey(e.ctx, "owner")
	b, err := e.s.CreateBucket(e.ctx, k.ID, "photos")
	if err != nil {
		t.Fatal(err)
	}
	if kk, _ := e.s.GetKey(e.ctx, k.ID); kk.Perms[b.ID] != (Perm{true, true, true}) {
		t.Fatalf("owner perms = %+v", kk.Perms)
	}
	other, _ := e.s.CreateKey(e.ctx, "other")
	cases := []struct {
		name, owner, bucket string
		want                error
	}{
		{"owned by you", k.ID, "photos", ErrBucketAlreadyOwnedByYou},
		{"owned by other", other.ID, "photos", ErrBucketAlreadyExists},
		{"admin on existing", "", "photos", ErrBucketAlreadyExists},
		{"invalid name", "", "Bad_Name", ErrInvalidBucketName},
		{"missing owner key", "GKnope00", "fresh-bucket", ErrNoSuchAccessKey},
		{"second bucket", "", "archive", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.s.CreateBucket(e.ctx, tc.owner, tc.bucket); !errors.Is(err, tc.want) {
				t.Fatalf("CreateBucket err = %v, want %v", err, tc.want)
			}
		})
	}
	bs, err := e.s.ListBuckets(e.ctx)
	if err != nil || len(bs) != 2 || bs[0].Name != "archive" || bs[1].Name != "photos" {
		t.Fatalf("ListBuckets = %+v, %v", bs, err)
	}
	e.put("photos", "a.jpg", randBytes(1, 100_000))
	e.put("photos", "b.txt", []byte("hello"))
	if _, err := e.s.CreateMultipartUpload(e.ctx, "photos", "big", Headers{}, ""); err != nil {
		t.Fatal(err)
	}
	st, err := e.s.BucketStats(e.ctx, "photos")
	if err != nil || st != (BucketStats{Objects: 2, Bytes: 100_005, UnfinishedUploads: 1}) {
		t.Fatalf("BucketStats = %+v, %v", st, err)
	}
	if err := e.s.DeleteBucket(e.ctx, "photos"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete non-empty: %v", err)
	}
	for _, key := range []string{"a.jpg", "b.txt"} {
		if err := e.s.DeleteObject(e.ctx, "photos", key); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.DeleteBucket(e.ctx, "photos"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetBucket(e.ctx, "photos"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("deleted bucket: %v", err)
	}
	if kk, _ := e.s.GetKey(e.ctx, k.ID); len(kk.Perms) != 0 {
		t.Fatalf("perms on a deleted bucket remain: %+v", kk.Perms)
	}
	// The name is free again, under a new id.
	nb, err := e.s.CreateBucket(e.ctx, "", "photos")
	if err != nil || nb.ID == b.ID {
		t.Fatalf("recreate: %+v %v", nb, err)
	}
	if _, err := e.s.HeadObject(e.ctx, "photos", "b.txt"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("object visible in recreated bucket: %v", err)
	}
	if e.gcAll() == 0 {
		t.Fatal("deleting the objects and aborting the upload freed no block")
	}
	if n := e.blockFiles(); n != 0 {
		t.Fatalf("%d block files left after deleting everything", n)
	}
}
