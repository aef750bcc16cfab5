package s3

import (
	"errors"
	"testing"
)

var rangeCases = []struct {
	name    string
	header  string
	size    int64
	want    byteRange
	partial bool
	err     bool
}{
	{name: "none", header: "", size: 10},
	{name: "first bytes", header: "bytes=0-4", size: 10, want: byteRange{0, 5}, partial: true},
	{name: "middle", header: "bytes=2-3", size: 10, want: byteRange{2, 2}, partial: true},
	{name: "open end", header: "bytes=7-", size: 10, want: byteRange{7, 3}, partial: true},
	{name: "end clamped", header: "bytes=5-100", size: 10, want: byteRange{5, 5}, partial: true},
	{name: "suffix", header: "bytes=-3", size: 10, want: byteRange{7, 3}, partial: true},
	{name: "suffix larger than object", header: "bytes=-30", size: 10, want: byteRange{0, 10}, partial: true},
	{name: "last byte", header: "bytes=9-9", size: 10, want: byteRange{9, 1}, partial: true},
	{name: "start past end", header: "bytes=10-", size: 10, err: true},
	{name: "start past end closed", header: "bytes=20-30", size: 10, err: true},
	{name: "suffix zero", header: "bytes=-0", size: 10, err: true},
	{name: "empty object", header: "bytes=0-", size: 0, err: true},
	{name: "empty object suffix", header: "bytes=-1", size: 0, err: true},
	{name: "multiple ranges serve whole", header: "bytes=0-1,4-5", size: 10},
	{name: "other unit ignored", header: "items=0-1", size: 10},
	{name: "reversed ignored", header: "bytes=5-2", size: 10},
	{name: "garbage ignored", header: "bytes=a-b", size: 10},
	{name: "no dash ignored", header: "bytes=5", size: 10},
	{name: "negative start ignored", header: "bytes=--5", size: 10},
	{name: "plus sign ignored", header: "bytes=+1-2", size: 10},
}

func TestParseRange(t *testing.T) {
	for _, c := range rangeCases {
		t.Run(c.name, func(t *testing.T) {
			got, partial, err := parseRange(c.header, c.size)
			if c.err {
				if !errors.Is(err, errRangeNotSatisfiable) {
					t.Fatalf("err = %v, want not satisfiable", err)
				}
				if ae := toAPIError(err, false); ae.Code != CodeInvalidRange || ae.Status() != 416 {
					t.Fatalf("maps to %s %d", ae.Code, ae.Status())
				}
				return
			}
			if err != nil || partial != c.partial || got != c.want {
				t.Fatalf("got %+v partial=%v err=%v, want %+v partial=%v", got, partial, err, c.want, c.partial)
			}
		})
	}
}

func TestParseCopySourceRange(t *testing.T) {
	cases := []struct {
		name, h string
		size    int64
		want    byteRange
		code    ErrorCode
	}{
		{name: "ok", h: "bytes=0-9", size: 10, want: byteRange{0, 10}},
		{name: "middle", h: "bytes=3-4", size: 10, want: byteRange{3, 2}},
		{name: "past end", h: "bytes=5-10", size: 10, code: CodeInvalidRange},
		{name: "open", h: "bytes=5-", size: 10, code: CodeInvalidArgument},
		{name: "suffix", h: "bytes=-5", size: 10, code: CodeInvalidArgument},
		{name: "unit", h: "5-6", size: 10, code: CodeInvalidArgument},
		{name: "reversed", h: "bytes=6-5", size: 10, code: CodeInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCopySourceRange(c.h, c.size)
			if c.code != "" {
				if ae := toAPIError(err, false); err == nil || ae.Code != c.code {
					t.Fatalf("err %v, want %s", err, c.code)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v %v", got, err)
			}
		})
	}
}

func FuzzParseRange(f *testing.F) {
	for _, c := range rangeCases {
		f.Add(c.header, c.size)
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		r, partial, err := parseRange(h, size)
		if err != nil {
			if !errors.Is(err, errRangeNotSatisfiable) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if partial && (r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size) {
			t.Fatalf("range %+v outside object of %d", r, size)
		}
		if cr, err := parseCopySourceRange(h, size); err == nil && (cr.Start < 0 || cr.Length <= 0 || cr.Start+cr.Length > size) {
			t.Fatalf("copy range %+v outside object of %d", cr, size)
		}
	})
}
