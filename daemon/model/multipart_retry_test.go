package model

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

func sha256Sums(data []byte) func() Sums {
	return func() Sums {
		m := md5.Sum(data)
		s := sha256.Sum256(data)
		return Sums{MD5: m[:], Checksums: map[string]string{"SHA256": base64.StdEncoding.EncodeToString(s[:])}}
	}
}

// A Complete retried after it succeeded answers the same object; the
// object carries the composite checksum of its parts.
func TestCompleteRetriedAndCompositeChecksum(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	u, err := e.s.CreateMultipartUpload(e.ctx, "b01", "obj", Headers{}, "SHA256")
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	data := [][]byte{randBytes(31, 5*mib), randBytes(32, 1000)}
	var (
		parts []CompletedPart
		sums  []string
	)
	for i, d := range data {
		pi, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "obj", UploadID: u.UploadID, PartNumber: i + 1, Body: bytes.NewReader(d), Sums: sha256Sums(d)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, CompletedPart{PartNumber: i + 1, ETag: `"` + pi.ETag + `"`})
		sums = append(sums, pi.Checksums["SHA256"])
	}
	want, ok := CompositeChecksum("SHA256", sums)
	if !ok {
		t.Fatal("no composite checksum")
	}
	m1, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", u.UploadID, parts, WriteConditions{})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Checksums["SHA256"] != want {
		t.Fatalf("complete checksums %v, want SHA256 %s", m1.Checksums, want)
	}
	m2, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", u.UploadID, parts, WriteConditions{})
	if err != nil {
		t.Fatalf("retried complete: %v", err)
	}
	if m2.ETag != m1.ETag || m2.VersionID != m1.VersionID || m2.Checksums["SHA256"] != want || m2.Size != m1.Size {
		t.Fatalf("retried complete %+v, first %+v", m2, m1)
	}
	if h, err := e.s.HeadObject(e.ctx, "b01", "obj"); err != nil || h.VersionID != m1.VersionID {
		t.Fatalf("object after retry: %+v %v", h, err)
	}
	// Another part list, or an upload id that never existed: still NoSuchUpload.
	if _, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", u.UploadID, parts[:1], WriteConditions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("retry with other parts: %v", err)
	}
	if _, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", "nosuchupload", parts, WriteConditions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("unknown upload id: %v", err)
	}
	// Once the object changed, the retry no longer matches: a copy onto
	// itself keeps the ETag and part count but was made by no upload.
	src, err := e.s.HeadObject(e.ctx, "b01", "obj")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CopyObject(e.ctx, CopyInput{Src: src, DstBucket: "b01", DstKey: "obj"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", u.UploadID, parts, WriteConditions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("retry after copy onto itself: %v", err)
	}
	e.put("b01", "obj", []byte("replaced"))
	if _, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "obj", u.UploadID, parts, WriteConditions{}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("retry after overwrite: %v", err)
	}
}

func TestCompositeChecksum(t *testing.T) {
	// Vectors from ceph/s3-tests (test_multipart_checksum_sha256,
	// test_multipart_reupload_checksum_and_etag).
	cases := []struct {
		name string
		algo string
		in   []string
		want string
		ok   bool
	}{
		{name: "sha256 one part", algo: "SHA256", in: []string{"arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0="},
			want: "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1", ok: true},
		{name: "sha256 three parts", algo: "SHA256", in: []string{"275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI=",
			"mrHwOfjTL5Zwfj74F05HOQGLdUb7E5szdCbxgUSq6NM=", "Vw7oB/nKQ5xWb3hNgbyfkvDiivl+U+/Dft48nfJfDow="},
			want: "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3", ok: true},
		{name: "missing part checksum", algo: "SHA256", in: []string{"arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=", ""}},
		{name: "bad base64", algo: "SHA256", in: []string{"bad!"}},
		{name: "no parts", algo: "SHA256"},
		{name: "crc64nvme has no composite", algo: "CRC64NVME", in: []string{"AAAAAAAAAAA="}},
		{name: "crc32", algo: "CRC32", in: []string{"AAAAAA==", "AAAAAA=="}, want: "ZSLfaQ==-2", ok: true}, // big-endian crc32 of 8 zero bytes,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := CompositeChecksum(c.algo, c.in)
			if ok != c.ok || got != c.want {
				t.Fatalf("CompositeChecksum = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzCompositeChecksum(f *testing.F) {
	f.Add("SHA256", "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=", "")
	f.Add("CRC32", "AAAAAA==", "AAAAAA==")
	f.Fuzz(func(t *testing.T, algo, a, b string) {
		got, ok := CompositeChecksum(algo, []string{a, b})
		if ok != (got != "") {
			t.Fatalf("ok=%v with %q", ok, got)
		}
		if ok && got[len(got)-2:] != "-2" {
			t.Fatalf("part count suffix missing: %q", got)
		}
	})
}
