package model

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LifecycleStats is what one lifecycle pass did.
type LifecycleStats struct {
	Expired int `json:"expired"`
	Aborted int `json:"aborted"`
}

// ExpiryDue reports whether an object last modified at mod is expired at
// now by a rule with ExpirationDays: AWS adds the days to the creation
// time and rounds up to the next midnight UTC.
func ExpiryDue(mod time.Time, days int, now time.Time) bool {
	if days <= 0 {
		return false
	}
	t := mod.UTC().Add(time.Duration(days) * 24 * time.Hour)
	due := t.Truncate(24 * time.Hour)
	if due.Before(t) {
		due = due.Add(24 * time.Hour)
	}
	return !now.Before(due)
}

func (r LifecycleRule) matchesObject(m ObjectMeta, now time.Time) bool {
	if !r.Enabled || !strings.HasPrefix(m.Key, r.Prefix) {
		return false
	}
	if r.SizeGreaterThan > 0 && m.Size <= r.SizeGreaterThan {
		return false
	}
	if r.SizeLessThan > 0 && m.Size >= r.SizeLessThan {
		return false
	}
	switch {
	case r.ExpirationDays > 0:
		return ExpiryDue(m.LastModified, r.ExpirationDays, now)
	case !r.ExpirationDate.IsZero():
		return !now.Before(r.ExpirationDate)
	}
	return false
}

// RunLifecycle applies every bucket's lifecycle rules once, as of now:
// expired objects are deleted, stale multipart uploads aborted. Every node
// may run it; the deletions converge.
func (s *Store) RunLifecycle(ctx context.Context, now time.Time) (LifecycleStats, error) {
	var st LifecycleStats
	bs, err := s.ListBuckets(ctx)
	if err != nil {
		return st, fmt.Errorf("lifecycle: %w", err)
	}
	var errs []error
	for _, b := range bs {
		if b.Config == nil || len(b.Config.Lifecycle) == 0 {
			continue
		}
		if err := s.lifecycleBucket(ctx, b, now, &st); err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("lifecycle bucket %q: %w", b.Name, err))
		}
	}
	return st, errors.Join(errs...)
}

func (s *Store) lifecycleBucket(ctx context.Context, b Bucket, now time.Time, st *LifecycleStats) error {
	for _, r := range b.Config.Lifecycle {
		if !r.Enabled {
			continue
		}
		if r.ExpirationDays > 0 || !r.ExpirationDate.IsZero() {
			marker := ""
			for {
				res, err := s.ListObjects(ctx, ListInput{Bucket: b.Name, Prefix: r.Prefix, Marker: marker, MaxKeys: 1000})
				if err != nil {
					return err
				}
				for _, o := range res.Objects {
					o.Key = strings.Clone(o.Key)
					if !r.matchesObject(o, now) {
						continue
					}
					if err := s.DeleteObject(ctx, b.Name, o.Key); err != nil && !errors.Is(err, ErrNoSuchKey) {
						return err
					}
					st.Expired++
				}
				if !res.IsTruncated || len(res.Objects) == 0 {
					break
				}
				marker = res.Objects[len(res.Objects)-1].Key
			}
		}
		if r.AbortIncompleteDays > 0 {
			in := ListUploadsInput{Bucket: b.Name, Prefix: r.Prefix, MaxUploads: 1000}
			for {
				res, err := s.ListMultipartUploads(ctx, in)
				if err != nil {
					return err
				}
				for _, u := range res.Uploads {
					if !ExpiryDue(u.Initiated, r.AbortIncompleteDays, now) {
						continue
					}
					if err := s.AbortMultipartUpload(ctx, b.Name, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNoSuchUpload) {
						return err
					}
					st.Aborted++
				}
				if !res.IsTruncated {
					break
				}
				in.KeyMarker, in.UploadIDMarker = res.NextKeyMarker, res.NextUploadIDMarker
			}
		}
	}
	return nil
}

// RunLifecycleDaily runs RunLifecycle every day at 00:00 UTC until ctx ends.
// trigger, when not nil, runs an extra pass on each receive (test hook).
func (s *Store) RunLifecycleDaily(ctx context.Context, trigger <-chan struct{}) {
	for {
		now := s.now().UTC()
		next := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-trigger:
			t.Stop()
		}
		st, err := s.RunLifecycle(ctx, s.now())
		if err != nil && ctx.Err() == nil {
			s.log.Warn("lifecycle", "err", err)
		}
		if st.Expired+st.Aborted > 0 {
			s.log.Info("lifecycle", "expired", st.Expired, "aborted", st.Aborted)
		}
	}
}

// StartLifecycle runs RunLifecycleDaily in the background until Close.
// Call it at most once, after Open and before Close.
func (s *Store) StartLifecycle(trigger <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	prev := s.cancel
	s.cancel = func() { cancel(); prev() }
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.RunLifecycleDaily(ctx, trigger) }()
}
