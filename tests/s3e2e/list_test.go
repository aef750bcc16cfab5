package s3e2e

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// listKeys is in S3 order: UTF-8 bytes, so "z" sorts before "é".
var listKeys = []string{"a/1", "a/2", "a/b/3", "b/4", "c", "d e/5", "z", "é/6"}

func listBucket(t *testing.T) string {
	t.Helper()
	bucket := newBucket(t)
	for _, k := range listKeys {
		put(t, bucket, k, []byte(k))
	}
	return bucket
}

func keysOf(objs []types.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, aws.ToString(o.Key))
	}
	return out
}

func prefixesOf(ps []types.CommonPrefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, aws.ToString(p.Prefix))
	}
	return out
}

func TestListObjectsV2(t *testing.T) {
	bucket := listBucket(t)
	cl := client()
	cases := []struct {
		name         string
		in           s3.ListObjectsV2Input
		wantKeys     []string
		wantPrefixes []string
	}{
		{name: "all", wantKeys: listKeys},
		{name: "prefix", in: s3.ListObjectsV2Input{Prefix: aws.String("a/")}, wantKeys: []string{"a/1", "a/2", "a/b/3"}},
		{name: "delimiter", in: s3.ListObjectsV2Input{Delimiter: aws.String("/")}, wantKeys: []string{"c", "z"},
			wantPrefixes: []string{"a/", "b/", "d e/", "é/"}},
		{name: "prefix and delimiter", in: s3.ListObjectsV2Input{Prefix: aws.String("a/"), Delimiter: aws.String("/")},
			wantKeys: []string{"a/1", "a/2"}, wantPrefixes: []string{"a/b/"}},
		{name: "start-after", in: s3.ListObjectsV2Input{StartAfter: aws.String("b/4")}, wantKeys: []string{"c", "d e/5", "z", "é/6"}},
		{name: "no match", in: s3.ListObjectsV2Input{Prefix: aws.String("q")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Bucket = aws.String(bucket)
			out, err := cl.ListObjectsV2(ctxT(t), &in)
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(out.Contents); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("keys %q, want %q", got, tc.wantKeys)
			}
			if got := prefixesOf(out.CommonPrefixes); !slices.Equal(got, tc.wantPrefixes) {
				t.Errorf("prefixes %q, want %q", got, tc.wantPrefixes)
			}
			if int(aws.ToInt32(out.KeyCount)) != len(tc.wantKeys)+len(tc.wantPrefixes) {
				t.Errorf("KeyCount %d", aws.ToInt32(out.KeyCount))
			}
			for _, o := range out.Contents {
				if aws.ToString(o.ETag) != quoted(md5hex([]byte(aws.ToString(o.Key)))) || aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) {
					t.Errorf("%s: etag %s size %d", aws.ToString(o.Key), aws.ToString(o.ETag), aws.ToInt64(o.Size))
				}
			}
		})
	}

	t.Run("pages of 3 with continuation tokens", func(t *testing.T) {
		var got []string
		var token *string
		for page := 0; page < 10; page++ {
			out, err := cl.ListObjectsV2(ctxT(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(3), ContinuationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Contents) > 3 {
				t.Fatalf("page of %d keys with max-keys 3", len(out.Contents))
			}
			got = append(got, keysOf(out.Contents)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			if out.NextContinuationToken == nil {
				t.Fatal("truncated page without NextContinuationToken")
			}
			token = out.NextContinuationToken
		}
		if !slices.Equal(got, listKeys) {
			t.Fatalf("paged keys %q, want %q", got, listKeys)
		}
	})
	t.Run("pages with delimiter", func(t *testing.T) {
		var keys, prefixes []string
		var token *string
		for page := 0; page < 10; page++ {
			out, err := cl.ListObjectsV2(ctxT(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(2), Delimiter: aws.String("/"), ContinuationToken: token})
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, keysOf(out.Contents)...)
			prefixes = append(prefixes, prefixesOf(out.CommonPrefixes)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			token = out.NextContinuationToken
		}
		if !slices.Equal(keys, []string{"c", "z"}) || !slices.Equal(prefixes, []string{"a/", "b/", "d e/", "é/"}) {
			t.Fatalf("keys %q prefixes %q", keys, prefixes)
		}
	})
	t.Run("encoding-type url", func(t *testing.T) {
		r := rawSigned(t, http.MethodGet, bucket, "", url.Values{"list-type": {"2"}, "encoding-type": {"url"}, "delimiter": {"/"}}, nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		var res struct {
			EncodingType string   `xml:"EncodingType"`
			Keys         []string `xml:"Contents>Key"`
			Prefixes     []string `xml:"CommonPrefixes>Prefix"`
		}
		if err := xml.Unmarshal(r.Body, &res); err != nil {
			t.Fatal(err)
		}
		if res.EncodingType != "url" {
			t.Errorf("EncodingType %q", res.EncodingType)
		}
		var decoded []string
		for _, p := range res.Prefixes {
			if p == "d e/" || p == "é/" {
				t.Errorf("prefix %q returned unencoded", p)
			}
			d, err := url.QueryUnescape(p)
			if err != nil {
				t.Fatalf("prefix %q: %v", p, err)
			}
			decoded = append(decoded, d)
		}
		if !slices.Equal(decoded, []string{"a/", "b/", "d e/", "é/"}) {
			t.Errorf("decoded prefixes %q", decoded)
		}
	})
}

func TestListObjectsV1(t *testing.T) {
	bucket := listBucket(t)
	cl := client()
	t.Run("marker paging", func(t *testing.T) {
		var got []string
		var marker *string
		for page := 0; page < 10; page++ {
			out, err := cl.ListObjects(ctxT(t), &s3.ListObjectsInput{Bucket: aws.String(bucket), MaxKeys: aws.Int32(3), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, keysOf(out.Contents)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			marker = out.Contents[len(out.Contents)-1].Key
		}
		if !slices.Equal(got, listKeys) {
			t.Fatalf("paged keys %q, want %q", got, listKeys)
		}
	})
	t.Run("delimiter with NextMarker", func(t *testing.T) {
		var keys, prefixes []string
		var marker *string
		for page := 0; page < 10; page++ {
			out, err := cl.ListObjects(ctxT(t), &s3.ListObjectsInput{Bucket: aws.String(bucket), MaxKeys: aws.Int32(2), Delimiter: aws.String("/"), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, keysOf(out.Contents)...)
			prefixes = append(prefixes, prefixesOf(out.CommonPrefixes)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			if out.NextMarker == nil {
				t.Fatal("truncated v1 listing with a delimiter must carry NextMarker")
			}
			marker = out.NextMarker
		}
		if !slices.Equal(keys, []string{"c", "z"}) || !slices.Equal(prefixes, []string{"a/", "b/", "d e/", "é/"}) {
			t.Fatalf("keys %q prefixes %q", keys, prefixes)
		}
	})
	t.Run("prefix", func(t *testing.T) {
		out, err := cl.ListObjects(ctxT(t), &s3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String("a/b")})
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(out.Contents); !slices.Equal(got, []string{"a/b/3"}) {
			t.Fatalf("keys %q", got)
		}
	})
	t.Run("encoding-type url", func(t *testing.T) {
		r := rawSigned(t, http.MethodGet, bucket, "", url.Values{"encoding-type": {"url"}, "prefix": {"é"}}, nil, nil)
		var res struct {
			Keys []string `xml:"Contents>Key"`
		}
		if err := xml.Unmarshal(r.Body, &res); err != nil || r.Status != http.StatusOK {
			t.Fatalf("status %d err %v: %s", r.Status, err, r.Body)
		}
		if len(res.Keys) != 1 || res.Keys[0] == "é/6" {
			t.Fatalf("keys %q, want one url-encoded key", res.Keys)
		}
		if d, _ := url.QueryUnescape(res.Keys[0]); d != "é/6" {
			t.Fatalf("key %q decodes to %q", res.Keys[0], d)
		}
	})
}
