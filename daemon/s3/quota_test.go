package s3

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/entrepot/entrepot/daemon/model"
)

// statsOnly is a ConfigBackend whose only working method is BucketStats.
type statsOnly struct {
	ConfigBackend
	counts atomic.Int64
	st     model.BucketStats
}

func (s *statsOnly) BucketStats(context.Context, string) (model.BucketStats, error) {
	s.counts.Add(1)
	return s.st, nil
}

func TestCheckQuotaReservesConcurrently(t *testing.T) {
	h := &handler{}
	cb := &statsOnly{st: model.BucketStats{Objects: 2, Bytes: 100}}
	b := model.Bucket{ID: "id", Name: "b", Config: &model.BucketConfig{Quota: model.Quota{MaxObjects: 10, MaxSize: 1000}}}
	var ok, over atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.checkQuota(context.Background(), cb, b, 1, 10)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, model.ErrQuotaExceeded):
				over.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 8 || over.Load() != 42 {
		t.Fatalf("%d passed, %d refused; want 8 and 42", ok.Load(), over.Load())
	}
	if n := cb.counts.Load(); n < 1 || n > 50 {
		t.Fatalf("%d counts", n)
	}
	// Shrinking writes pass even at the limit; size is checked too.
	if err := h.checkQuota(context.Background(), cb, b, 0, -5); err != nil {
		t.Fatal(err)
	}
	b.Config.Quota = model.Quota{MaxSize: 200}
	if err := h.checkQuota(context.Background(), cb, b, 0, 100); !errors.Is(err, model.ErrQuotaExceeded) {
		t.Fatalf("size: %v", err)
	}
}
