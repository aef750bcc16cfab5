package model

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// naiveList is the reference: every (key or common prefix) in order.
func naiveList(keys []string, prefix, delim, marker string) []string {
	seen := map[string]bool{}
	var out []string
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		item := k
		if cp, ok := commonPrefix(k, prefix, delim); ok {
			item = cp
		}
		// Keys after the marker count; a common prefix equal to the marker
		// is one we already returned (our NextMarker), so it is skipped.
		if k <= marker || item == marker || seen[item] {
			continue
		}
		seen[item] = true
		out = append(out, item)
	}
	return out
}

func TestListObjects(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	keys := []string{"a", "a/1", "a/2", "a/b/1", "a/b/2", "a0", "b", "b/", "b//x", "c/x/y", "c/z", "photos/2024/1.jpg",
		"photos/2024/2.jpg", "photos/2025/1.jpg", "photos/readme", "z", "\u00e9t\u00e9"}
	for i, k := range keys {
		e.put("b01", k, []byte(fmt.Sprint(i)))
	}
	// Deleted objects never show.
	e.put("b01", "a/deleted", []byte("x"))
	if err := e.s.DeleteObject(e.ctx, "b01", "a/deleted"); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ prefix, delim, marker string }{
		{"", "", ""},
		{"", "/", ""},
		{"a", "/", ""},
		{"a/", "/", ""},
		{"photos/", "/", ""},
		{"photos/2024/", "/", ""},
		{"", "/", "a/"},
		{"", "/", "a/1"},
		{"", "", "b"},
		{"", "/", "b"},
		{"c", "x", ""},
		{"nothing", "/", ""},
		{"", "//", ""},
		{"", "/", "zz"},
	}
	for _, tc := range cases {
		want := naiveList(keys, tc.prefix, tc.delim, tc.marker)
		for _, page := range []int{1, 2, 3, 1000} {
			t.Run(fmt.Sprintf("p=%q,d=%q,m=%q,max=%d", tc.prefix, tc.delim, tc.marker, page), func(t *testing.T) {
				var got []string
				in := ListInput{Bucket: "b01", Prefix: tc.prefix, Delimiter: tc.delim, Marker: tc.marker, MaxKeys: page}
				for i := 0; i < 50; i++ {
					r, err := e.s.ListObjects(e.ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					if n := len(r.Objects) + len(r.CommonPrefixes); n > page {
						t.Fatalf("page of %d items, max %d", n, page)
					}
					page := make([]string, 0)
					for _, o := range r.Objects {
						page = append(page, o.Key)
						if o.Size == 0 || o.ETag == "" {
							t.Fatalf("object %q without meta", o.Key)
						}
					}
					page = append(page, r.CommonPrefixes...)
					sort.Strings(page)
					got = append(got, page...)
					if !r.IsTruncated {
						if r.NextMarker != "" {
							t.Fatal("NextMarker set on the last page")
						}
						break
					}
					if r.NextMarker != page[len(page)-1] {
						t.Fatalf("NextMarker %q, last item %q", r.NextMarker, page[len(page)-1])
					}
					in.Marker = r.NextMarker
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("got  %q\nwant %q", got, want)
				}
			})
		}
	}
	r, err := e.s.ListObjects(e.ctx, ListInput{Bucket: "b01", MaxKeys: 0})
	if err != nil || len(r.Objects) != 0 || !r.IsTruncated {
		t.Fatalf("MaxKeys 0 = %+v, %v", r, err)
	}
	if _, err := e.s.ListObjects(e.ctx, ListInput{Bucket: "b01", MaxKeys: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("MaxKeys -1: %v", err)
	}
	if _, err := e.s.ListObjects(e.ctx, ListInput{Bucket: "nope-b", MaxKeys: 1}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}

// TestListSkipsCommonPrefixBySeeking checks that a big common prefix costs
// one seek, not a scan: the listing reads far fewer entries than it skips.
func TestListSkipsCommonPrefixBySeeking(t *testing.T) {
	e := newEnv(t)
	e.bucket("b01")
	for i := range 600 {
		e.put("b01", fmt.Sprintf("dir/%04d", i), []byte("x"))
	}
	e.put("b01", "file", []byte("x"))
	counter := &countingObjects{kvTable: e.s.objects}
	e.s.objects = counter
	r, err := e.s.ListObjects(e.ctx, ListInput{Bucket: "b01", Delimiter: "/", MaxKeys: 1000})
	if err != nil || len(r.CommonPrefixes) != 1 || len(r.Objects) != 1 {
		t.Fatalf("list = %+v, %v", r, err)
	}
	if counter.entries > listBatch+2 {
		t.Fatalf("listing read %d entries to skip a 600-key prefix", counter.entries)
	}
}

type countingObjects struct {
	kvTable[objectRec]
	entries int
}

func (c *countingObjects) Range(ctx contextT, pk, from string, limit int) ([]tableEntryObj, error) {
	es, err := c.kvTable.Range(ctx, pk, from, limit)
	c.entries += len(es)
	return es, err
}
