package model

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"testing"
)

func TestMultipart(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	u, err := e.s.CreateMultipartUpload(e.ctx, "b01", "big", Headers{ContentType: "video/mp4"}, "CRC32")
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	parts := map[int][]byte{1: randBytes(21, 5*mib), 2: randBytes(22, 5*mib+3), 3: randBytes(23, 1000)}
	infos := map[int]PartInfo{}
	for _, n := range []int{1, 2, 3} {
		// Part 2 is first uploaded with other data, then replaced.
		if n == 2 {
			junk := randBytes(99, 2*testBlock)
			if _, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "big", UploadID: u.UploadID, PartNumber: 2, Body: bytes.NewReader(junk), Sums: sumsOf(junk)}); err != nil {
				t.Fatal(err)
			}
		}
		pi, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "big", UploadID: u.UploadID, PartNumber: n, Body: bytes.NewReader(parts[n]), Sums: sumsOf(parts[n])})
		if err != nil {
			t.Fatal(err)
		}
		if pi.ETag != md5hex(parts[n]) || pi.Size != int64(len(parts[n])) {
			t.Fatalf("part %d info %+v", n, pi)
		}
		infos[n] = pi
	}
	if n := e.gcAll(); n != 2 {
		t.Fatalf("replacing part 2 freed %d blocks, want 2", n)
	}
	lp, err := e.s.ListParts(e.ctx, ListPartsInput{Bucket: "b01", Key: "big", UploadID: u.UploadID, MaxParts: 2})
	if err != nil || len(lp.Parts) != 2 || !lp.IsTruncated || lp.NextPartNumberMarker != 2 || lp.Upload.ChecksumAlgorithm != "CRC32" {
		t.Fatalf("ListParts page 1 = %+v, %v", lp, err)
	}
	lp, err = e.s.ListParts(e.ctx, ListPartsInput{Bucket: "b01", Key: "big", UploadID: u.UploadID, PartNumberMarker: 2})
	if err != nil || len(lp.Parts) != 1 || lp.IsTruncated || lp.Parts[0].PartNumber != 3 {
		t.Fatalf("ListParts page 2 = %+v, %v", lp, err)
	}
	cp := func(ns ...int) []CompletedPart {
		var out []CompletedPart
		for _, n := range ns {
			out = append(out, CompletedPart{PartNumber: n, ETag: `"` + infos[n].ETag + `"`})
		}
		return out
	}
	bad := []struct {
		name  string
		parts []CompletedPart
		want  error
	}{
		{"empty", nil, ErrInvalidArgument},
		{"descending", cp(2, 1), ErrInvalidPartOrder},
		{"duplicate", cp(1, 1), ErrInvalidPartOrder},
		{"wrong etag", []CompletedPart{{1, "abc"}}, ErrInvalidPart},
		{"missing part", []CompletedPart{{4, infos[1].ETag}}, ErrInvalidPart},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "big", u.UploadID, tc.parts, WriteConditions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	u2, _ := e.s.CreateMultipartUpload(e.ctx, "b01", "small", Headers{}, "")
	s1 := randBytes(31, 100)
	p1, _ := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "small", UploadID: u2.UploadID, PartNumber: 1, Body: bytes.NewReader(s1), Sums: sumsOf(s1)})
	p2, _ := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "small", UploadID: u2.UploadID, PartNumber: 2, Body: bytes.NewReader(s1), Sums: sumsOf(s1)})
	if _, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "small", u2.UploadID,
		[]CompletedPart{{1, p1.ETag}, {2, p2.ETag}}, WriteConditions{}); !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("small first part: %v", err)
	}
	if err := e.s.AbortMultipartUpload(e.ctx, "b01", "small", u2.UploadID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.GetUpload(e.ctx, "b01", "small", u2.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("aborted upload: %v", err)
	}
	if err := e.s.AbortMultipartUpload(e.ctx, "b01", "small", u2.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("abort twice: %v", err)
	}
	if n := e.gcAll(); n != 1 {
		t.Fatalf("abort freed %d blocks, want 1", n)
	}

	filesBefore := e.blockFiles()
	m, err := e.s.CompleteMultipartUpload(e.ctx, "b01", "big", u.UploadID, cp(1, 2, 3), WriteConditions{IfNoneMatchStar: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.blockFiles() != filesBefore {
		t.Fatal("complete wrote block files (copied data)")
	}
	mh := md5.New()
	for _, n := range []int{1, 2, 3} {
		s := md5.Sum(parts[n])
		mh.Write(s[:])
	}
	want := append(append(append([]byte{}, parts[1]...), parts[2]...), parts[3]...)
	if m.ETag != hex.EncodeToString(mh.Sum(nil))+"-3" || m.Size != int64(len(want)) || m.PartsCount != 3 || m.Headers.ContentType != "video/mp4" {
		t.Fatalf("completed meta %+v", m)
	}
	if got := e.get("b01", "big"); !bytes.Equal(got, want) {
		t.Fatal("completed object content differs")
	}
	// A range across the part 1/2 boundary.
	got, err := e.read(m, 5*mib-10, 20)
	if err != nil || !bytes.Equal(got, want[5*mib-10:5*mib+10]) {
		t.Fatalf("cross-part range: %v", err)
	}
	if _, err := e.s.GetUpload(e.ctx, "b01", "big", u.UploadID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("completed upload still listed: %v", err)
	}
	if n := e.gcAll(); n != 0 {
		t.Fatalf("GC after complete deleted %d blocks the object uses", n)
	}
	if got := e.get("b01", "big"); !bytes.Equal(got, want) {
		t.Fatal("object damaged by GC after complete")
	}
	// UploadPartCopy from the completed object, then complete.
	u3, _ := e.s.CreateMultipartUpload(e.ctx, "b01", "copy", Headers{}, "")
	pc, err := e.s.UploadPartCopy(e.ctx, "b01", "copy", u3.UploadID, 1, m, 0, 5*mib)
	if err != nil || pc.ETag != md5hex(parts[1]) {
		t.Fatalf("UploadPartCopy = %+v, %v", pc, err)
	}
	if e.blockFiles() != filesBefore {
		t.Fatal("block-aligned part copy did not dedup")
	}
	if _, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "copy", UploadID: u3.UploadID, PartNumber: 0}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("part 0: %v", err)
	}
	if _, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "copy", UploadID: u3.UploadID, PartNumber: 10001}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("part 10001: %v", err)
	}
	if _, err := e.s.UploadPart(e.ctx, PartInput{Bucket: "b01", Key: "copy", UploadID: "nope", PartNumber: 1}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("unknown upload: %v", err)
	}
}

func TestListMultipartUploads(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	var all []string
	for _, k := range []string{"a", "a", "dir/x", "dir/y", "z"} {
		u, err := e.s.CreateMultipartUpload(e.ctx, "b01", k, Headers{}, "")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, k+"/"+u.UploadID)
	}
	cases := []struct {
		name  string
		delim string
		want  []string
	}{
		{"flat", "", all},
		{"delimited", "/", []string{all[0], all[1], "dir/", all[4]}},
	}
	for _, tc := range cases {
		for _, page := range []int{1, 2, 1000} {
			t.Run(fmt.Sprintf("%s/page%d", tc.name, page), func(t *testing.T) {
				var got []string
				in := ListUploadsInput{Bucket: "b01", Delimiter: tc.delim, MaxUploads: page}
				for i := 0; i < 20; i++ {
					r, err := e.s.ListMultipartUploads(e.ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					for _, u := range r.Uploads {
						got = append(got, u.Key+"/"+u.UploadID)
					}
					got = append(got, r.CommonPrefixes...)
					if !r.IsTruncated {
						break
					}
					in.KeyMarker, in.UploadIDMarker = r.NextKeyMarker, r.NextUploadIDMarker
				}
				// Uploads and common prefixes are separate lists: compare as sets.
				sort.Strings(got)
				want := append([]string{}, tc.want...)
				sort.Strings(want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got %v\nwant %v", got, want)
				}
			})
		}
	}
}
