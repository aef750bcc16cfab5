package model

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/entrepot/entrepot/daemon/table"
)

// Status reports this node's identity, disk and content counts.
func (s *Store) Status(ctx context.Context) (NodeStatus, error) {
	st := NodeStatus{
		NodeID: s.cfg.NodeID, Hostname: s.cfg.Hostname, Zone: s.cfg.Zone, Capacity: s.cfg.Capacity,
		DataDir: s.cfg.DataDir, Version: s.cfg.Version, Started: s.started,
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.cfg.DataDir, &fs); err == nil {
		st.DataAvail = int64(fs.Bavail) * int64(fs.Bsize)
		st.DataTotal = int64(fs.Blocks) * int64(fs.Bsize)
	}
	bs, err := s.ListBuckets(ctx)
	if err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	st.Buckets = int64(len(bs))
	for _, b := range bs {
		bst, err := s.bucketStats(ctx, b.ID)
		if err != nil {
			return st, fmt.Errorf("status: %w", err)
		}
		st.Objects += bst.Objects
		st.Bytes += bst.Bytes
	}
	if st.Blocks, st.BlockBytes, st.PendingGC, err = s.blocks.Stats(ctx); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// RepairVersions frees live versions older than minAge that nothing points
// at any more: an object version whose object entry moved on (a crash
// between storing the version and committing or freeing it), or a part whose
// upload is gone or holds another version of that part. It also drops block
// references of deleted versions. It returns how many versions and
// references it freed. Frees in flight finish first.
func (s *Store) RepairVersions(ctx context.Context, minAge time.Duration) (int, error) {
	s.waitFrees()
	type cand struct {
		id string
		v  versionRec
	}
	var cands []cand
	cutoff := uint64(s.now().Add(-minAge).UnixMilli())
	if err := s.versions.Scan(ctx, func(e table.Entry[versionRec]) error {
		if !e.Value.Del && e.Value.TS < cutoff {
			cands = append(cands, cand{e.PK, e.Value})
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("repair versions: %w", err)
	}
	freed, err := s.repairRefs(ctx, cutoff)
	if err != nil {
		return freed, err
	}
	for _, c := range cands {
		used, err := s.versionUsed(ctx, c.id, c.v)
		if err != nil {
			return freed, fmt.Errorf("repair versions: %w", err)
		}
		if used {
			continue
		}
		if err := s.freeVersion(ctx, c.id); err != nil {
			return freed, fmt.Errorf("repair versions: %w", err)
		}
		freed++
	}
	return freed, nil
}

// repairRefs drops live block references older than cutoff (ms) whose
// version is deleted or missing: what a crash between freeVersion's two
// writes leaves. In-flight writes are younger than cutoff (a PUT writes its
// references just before its version).
func (s *Store) repairRefs(ctx context.Context, cutoff uint64) (int, error) {
	var stale []table.Entry[lww[struct{}]]
	if err := s.blockRefs.Scan(ctx, func(e table.Entry[lww[struct{}]]) error {
		if e.Value.Del || e.Value.TS >= cutoff {
			return nil
		}
		v, ok, err := s.versions.Get(ctx, e.SK, "")
		if err != nil {
			return err
		}
		if !ok || v.Del {
			stale = append(stale, table.Entry[lww[struct{}]]{PK: e.PK, SK: e.SK,
				Value: lww[struct{}]{TS: table.NextTS(s.now(), e.Value.TS), Del: true}})
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("repair block references: %w", err)
	}
	if _, err := s.blockRefs.Insert(ctx, stale...); err != nil {
		return 0, fmt.Errorf("repair block references: %w", err)
	}
	return len(stale), nil
}

func (s *Store) versionUsed(ctx context.Context, id string, v versionRec) (bool, error) {
	if v.UploadID != "" {
		u, ok, err := s.uploads.Get(ctx, v.BucketID, uploadSK(v.Key, v.UploadID))
		if err != nil || !ok || u.Del {
			return false, err
		}
		for _, p := range u.Parts {
			if p.VersionID == id {
				return true, nil
			}
		}
		return false, nil
	}
	o, _, err := s.objects.Get(ctx, v.BucketID, v.Key)
	if err != nil {
		return false, err
	}
	for _, ov := range o.Versions {
		if ov.ID == id && ov.State != stateDeleted && ov.State != stateAborted {
			return true, nil
		}
	}
	return false, nil
}
