package model

import (
	"context"
	"fmt"
	"strings"
)

const listBatch = 256

// prefixEnd is the smallest string greater than every string starting with
// p, or "" when there is none.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// commonPrefix returns the common prefix key rolls up into, if any.
func commonPrefix(key, prefix, delim string) (string, bool) {
	if delim == "" {
		return "", false
	}
	i := strings.Index(key[len(prefix):], delim)
	if i < 0 {
		return "", false
	}
	return key[:len(prefix)+i+len(delim)], true
}

// listStart is where a listing after marker begins: just after marker, or
// after the whole common prefix when marker is one (a NextMarker we gave).
func listStart(prefix, delim, marker string) (string, bool) {
	from := prefix
	if marker >= from {
		from = marker + "\x00"
		if strings.HasPrefix(marker, prefix) {
			if cp, ok := commonPrefix(marker, prefix, delim); ok && cp == marker {
				if from = prefixEnd(cp); from == "" {
					return "", false
				}
			}
		}
	}
	return from, true
}

// clampMax validates a max-keys count: negative is invalid, above 1000 is 1000.
func clampMax(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("negative max count %d: %w", n, ErrInvalidArgument)
	case n > 1000:
		return 1000, nil
	}
	return n, nil
}

// ListObjects lists a bucket's objects in key order, rolling keys up into
// common prefixes at Delimiter. Each batch read is used whole (in a cluster
// every read is a quorum round trip), and a common prefix whose keys run past
// the batch is skipped with one seek, whatever the number of keys under it.
func (s *Store) ListObjects(ctx context.Context, in ListInput) (ListResult, error) {
	b, err := s.bucketByName(ctx, in.Bucket)
	if err != nil {
		return ListResult{}, err
	}
	limit, err := clampMax(in.MaxKeys)
	if err != nil {
		return ListResult{}, err
	}
	res := ListResult{Objects: []ObjectMeta{}, CommonPrefixes: []string{}}
	from, ok := listStart(in.Prefix, in.Delimiter, in.Marker)
	count := 0
	skip := "" // after a common prefix: entries below skip roll up into it
	for ok {
		// Listing needs no object data: replicas leave inline bodies out.
		es, err := s.objects.RangeSummary(ctx, b.ID, from, listBatch)
		if err != nil {
			return ListResult{}, fmt.Errorf("list objects: %w", err)
		}
		full := len(es) == listBatch
		for _, e := range es {
			if !strings.HasPrefix(e.SK, in.Prefix) {
				full = false
				break
			}
			if e.SK < skip {
				continue
			}
			v, live := e.Value.visible()
			if !live {
				continue
			}
			if count == limit {
				res.IsTruncated = true
				return res, nil
			}
			count++
			if cp, isCP := commonPrefix(e.SK, in.Prefix, in.Delimiter); isCP {
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.NextMarker = cp
				if skip = prefixEnd(cp); skip == "" {
					full = false // nothing sorts after this prefix
					break
				}
				continue
			}
			res.Objects = append(res.Objects, metaOf(v, in.Bucket, e.SK))
			res.NextMarker = e.SK
		}
		// The rest of the batch is used before asking again (each request is
		// a round trip in a cluster); a prefix whose keys fill the batch is
		// skipped with one seek.
		if ok = full; ok {
			from = max(es[len(es)-1].SK+"\x00", skip)
		}
	}
	res.NextMarker = truncMarker(res)
	return res, nil
}

func truncMarker(r ListResult) string {
	if r.IsTruncated {
		return r.NextMarker
	}
	return ""
}

// ListMultipartUploads lists uploads in progress by key, then initiation
// time, after (KeyMarker, UploadIDMarker).
func (s *Store) ListMultipartUploads(ctx context.Context, in ListUploadsInput) (ListUploadsResult, error) {
	b, err := s.bucketByName(ctx, in.Bucket)
	if err != nil {
		return ListUploadsResult{}, err
	}
	limit := in.MaxUploads
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	res := ListUploadsResult{Uploads: []Upload{}, CommonPrefixes: []string{}}
	from := in.Prefix
	if in.KeyMarker != "" {
		var start string
		if in.UploadIDMarker != "" {
			start = uploadSK(in.KeyMarker, in.UploadIDMarker) + "\x00"
		} else if cp, isCP := commonPrefix(in.KeyMarker, in.Prefix, in.Delimiter); isCP && cp == in.KeyMarker && strings.HasPrefix(in.KeyMarker, in.Prefix) {
			start = prefixEnd(cp)
		} else {
			start = in.KeyMarker + "\x01" // after every upload of KeyMarker
		}
		if start > from {
			from = start
		}
	}
	ok := from != "" || in.Prefix == ""
	count := 0
	skip := "" // after a common prefix: entries below skip roll up into it
	for ok {
		es, err := s.uploads.Range(ctx, b.ID, from, listBatch)
		if err != nil {
			return ListUploadsResult{}, fmt.Errorf("list uploads: %w", err)
		}
		full := len(es) == listBatch
		for _, e := range es {
			key, id, _ := strings.Cut(e.SK, "\x00")
			if !strings.HasPrefix(key, in.Prefix) {
				full = false
				break
			}
			if e.Value.Del || e.SK < skip {
				continue
			}
			if count == limit {
				res.IsTruncated = true
				return res, nil
			}
			count++
			if cp, isCP := commonPrefix(key, in.Prefix, in.Delimiter); isCP {
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.NextKeyMarker, res.NextUploadIDMarker = cp, ""
				if skip = prefixEnd(cp); skip == "" {
					full = false
					break
				}
				continue
			}
			u := e.Value.Upload
			u.Bucket, u.Key, u.UploadID = in.Bucket, key, id
			res.Uploads = append(res.Uploads, u)
			res.NextKeyMarker, res.NextUploadIDMarker = key, id
		}
		// As in ListObjects: the whole batch is used, a long prefix sought past.
		if ok = full; ok {
			from = max(es[len(es)-1].SK+"\x00", skip)
		}
	}
	res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	return res, nil
}
