package model

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/entrepot/entrepot/daemon/table"
)

// ---- access keys ----

func (s *Store) getKey(ctx context.Context, id string) (lww[Key], error) {
	if id == "" {
		return lww[Key]{}, fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	k, ok, err := s.keys.Get(ctx, "", id)
	if err != nil {
		return k, fmt.Errorf("get access key: %w", err)
	}
	if !ok || k.Del {
		return k, fmt.Errorf("access key %q: %w", id, ErrNoSuchAccessKey)
	}
	if k.V.Perms == nil {
		k.V.Perms = map[string]Perm{}
	}
	return k, nil
}

// GetKey returns the key with its secret and permissions.
func (s *Store) GetKey(ctx context.Context, accessKeyID string) (Key, error) {
	k, err := s.getKey(ctx, accessKeyID)
	return k.V, err
}

// CreateKey makes a new random key ("GK" + 24 hex, secret 64 hex).
func (s *Store) CreateKey(ctx context.Context, name string) (Key, error) {
	return s.ImportKey(ctx, "GK"+newID(12), newID(32), name)
}

// ImportKey stores a key with a given id and secret.
func (s *Store) ImportKey(ctx context.Context, id, secret, name string) (Key, error) {
	if !validKeyID(id) || len(secret) < 8 || len(secret) > 256 || strings.ContainsAny(secret, " \t\r\n") {
		return Key{}, fmt.Errorf("import key: bad id or secret: %w", ErrInvalidArgument)
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	old, ok, err := s.keys.Get(ctx, "", id)
	if err != nil {
		return Key{}, fmt.Errorf("import key: %w", err)
	}
	if ok && !old.Del {
		return Key{}, fmt.Errorf("import key %s: %w", id, ErrAccessKeyExists)
	}
	k := Key{ID: id, Secret: secret, Name: name, Created: s.now().UTC().Truncate(1e6), Perms: map[string]Perm{}}
	if err := s.putKey(ctx, old, k); err != nil {
		return Key{}, fmt.Errorf("import key: %w", err)
	}
	return k, nil
}

func validKeyID(id string) bool {
	if len(id) < 3 || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (s *Store) putKey(ctx context.Context, old lww[Key], k Key) error {
	_, err := s.keys.Insert(ctx, table.Entry[lww[Key]]{SK: k.ID, Value: lww[Key]{TS: table.NextTS(s.now(), old.TS), V: k}})
	return err
}

// ListKeys lists every key, sorted by id, without secrets.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	es, err := s.keys.Range(ctx, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := []Key{}
	for _, e := range es {
		if e.Value.Del {
			continue
		}
		k := e.Value.V
		k.Secret = ""
		out = append(out, k)
	}
	return out, nil
}

// DeleteKey deletes a key.
func (s *Store) DeleteKey(ctx context.Context, accessKeyID string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, err := s.getKey(ctx, accessKeyID); err != nil {
		return err
	}
	if err := s.keys.Delete(ctx, "", accessKeyID); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	return nil
}

// updateKey applies fn to a live key under adminMu.
func (s *Store) updateKey(ctx context.Context, id string, fn func(*Key)) error {
	k, err := s.getKey(ctx, id)
	if err != nil {
		return err
	}
	nk := k.V
	nk.Perms = maps.Clone(k.V.Perms)
	fn(&nk)
	return s.putKey(ctx, k, nk)
}

// SetKeyCanCreateBucket allows or forbids a key to create buckets.
func (s *Store) SetKeyCanCreateBucket(ctx context.Context, accessKeyID string, allow bool) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	return s.updateKey(ctx, accessKeyID, func(k *Key) { k.CanCreateBucket = allow })
}

// SetPermission replaces the key's permission on a bucket; all false removes it.
func (s *Store) SetPermission(ctx context.Context, accessKeyID, bucketName string, p Perm) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	b, err := s.bucketByName(ctx, bucketName)
	if err != nil {
		return err
	}
	return s.updateKey(ctx, accessKeyID, func(k *Key) {
		if p == (Perm{}) {
			delete(k.Perms, b.ID)
		} else {
			k.Perms[b.ID] = p
		}
	})
}

// ---- buckets ----

func (s *Store) bucketByName(ctx context.Context, name string) (Bucket, error) {
	if !ValidBucketName(name) {
		return Bucket{}, fmt.Errorf("bucket %q: %w", name, ErrNoSuchBucket)
	}
	n, ok, err := s.bucketNames.Get(ctx, "", name)
	if err != nil {
		return Bucket{}, fmt.Errorf("get bucket: %w", err)
	}
	if !ok || n.Del {
		return Bucket{}, fmt.Errorf("bucket %q: %w", name, ErrNoSuchBucket)
	}
	b, ok, err := s.buckets.Get(ctx, "", n.V)
	if err != nil {
		return Bucket{}, fmt.Errorf("get bucket: %w", err)
	}
	if !ok || b.Del {
		return Bucket{}, fmt.Errorf("bucket %q: %w", name, ErrNoSuchBucket)
	}
	return b.V, nil
}

// GetBucket resolves a bucket by name.
func (s *Store) GetBucket(ctx context.Context, name string) (Bucket, error) {
	return s.bucketByName(ctx, name)
}

// CreateBucket creates a bucket owned by ownerKeyID ("" = admin), giving
// the owner read, write and owner permission.
func (s *Store) CreateBucket(ctx context.Context, ownerKeyID, name string) (Bucket, error) {
	if err := checkBucketName(name); err != nil {
		return Bucket{}, err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if cur, err := s.bucketByName(ctx, name); err == nil {
		if ownerKeyID != "" && cur.Owner == ownerKeyID {
			return Bucket{}, fmt.Errorf("create bucket %q: %w", name, ErrBucketAlreadyOwnedByYou)
		}
		return Bucket{}, fmt.Errorf("create bucket %q: %w", name, ErrBucketAlreadyExists)
	} else if !errors.Is(err, ErrNoSuchBucket) {
		return Bucket{}, err
	}
	var owner lww[Key]
	if ownerKeyID != "" {
		var err error
		if owner, err = s.getKey(ctx, ownerKeyID); err != nil {
			return Bucket{}, fmt.Errorf("create bucket: %w", err)
		}
	}
	now := s.now()
	b := Bucket{ID: newID(16), Name: name, Created: now.UTC().Truncate(1e6), Owner: ownerKeyID}
	if _, err := s.buckets.Insert(ctx, table.Entry[lww[Bucket]]{SK: b.ID, Value: lww[Bucket]{TS: table.NextTS(now, 0), V: b}}); err != nil {
		return Bucket{}, fmt.Errorf("create bucket: %w", err)
	}
	old, _, err := s.bucketNames.Get(ctx, "", name)
	if err != nil {
		return Bucket{}, fmt.Errorf("create bucket: %w", err)
	}
	if _, err := s.bucketNames.Insert(ctx, table.Entry[lww[string]]{SK: name, Value: lww[string]{TS: table.NextTS(now, old.TS), V: b.ID}}); err != nil {
		return Bucket{}, fmt.Errorf("create bucket: %w", err)
	}
	if ownerKeyID != "" {
		nk := owner.V
		nk.Perms = maps.Clone(owner.V.Perms)
		nk.Perms[b.ID] = Perm{Read: true, Write: true, Owner: true}
		if err := s.putKey(ctx, owner, nk); err != nil {
			return Bucket{}, fmt.Errorf("create bucket: grant owner: %w", err)
		}
	}
	return b, nil
}

// DeleteBucket deletes an empty bucket, aborting its multipart uploads.
func (s *Store) DeleteBucket(ctx context.Context, name string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	b, err := s.bucketByName(ctx, name)
	if err != nil {
		return err
	}
	empty, err := s.bucketEmpty(ctx, b.ID)
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("delete bucket %q: %w", name, ErrBucketNotEmpty)
	}
	ups, err := s.uploads.Range(ctx, b.ID, "", 0)
	if err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	for _, u := range ups {
		if !u.Value.Del {
			if err := s.abortUpload(ctx, b.ID, u.SK); err != nil {
				return fmt.Errorf("delete bucket: %w", err)
			}
		}
	}
	if err := s.bucketNames.Delete(ctx, "", name); err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	if err := s.buckets.Delete(ctx, "", b.ID); err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	keys, err := s.keys.Range(ctx, "", "", 0)
	if err != nil {
		return fmt.Errorf("delete bucket: %w", err)
	}
	for _, k := range keys {
		if _, has := k.Value.V.Perms[b.ID]; has && !k.Value.Del {
			if err := s.updateKey(ctx, k.SK, func(k *Key) { delete(k.Perms, b.ID) }); err != nil {
				return fmt.Errorf("delete bucket: revoke: %w", err)
			}
		}
	}
	return nil
}

func (s *Store) bucketEmpty(ctx context.Context, bucketID string) (bool, error) {
	from := ""
	for {
		es, err := s.objects.Range(ctx, bucketID, from, 256)
		if err != nil {
			return false, fmt.Errorf("check bucket empty: %w", err)
		}
		for _, e := range es {
			if _, ok := e.Value.visible(); ok {
				return false, nil
			}
		}
		if len(es) < 256 {
			return true, nil
		}
		from = es[len(es)-1].SK + "\x00"
	}
}

// ListBuckets lists every bucket sorted by name.
func (s *Store) ListBuckets(ctx context.Context) ([]Bucket, error) {
	names, err := s.bucketNames.Range(ctx, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	out := []Bucket{}
	for _, n := range names {
		if n.Value.Del {
			continue
		}
		b, ok, err := s.buckets.Get(ctx, "", n.Value.V)
		if err != nil {
			return nil, fmt.Errorf("list buckets: %w", err)
		}
		if ok && !b.Del {
			out = append(out, b.V)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// BucketStats counts a bucket's objects, bytes and unfinished uploads.
func (s *Store) BucketStats(ctx context.Context, name string) (BucketStats, error) {
	b, err := s.bucketByName(ctx, name)
	if err != nil {
		return BucketStats{}, err
	}
	return s.bucketStats(ctx, b.ID)
}

func (s *Store) bucketStats(ctx context.Context, bucketID string) (BucketStats, error) {
	var st BucketStats
	from := ""
	for {
		es, err := s.objects.Range(ctx, bucketID, from, 1024)
		if err != nil {
			return st, fmt.Errorf("bucket stats: %w", err)
		}
		for _, e := range es {
			if v, ok := e.Value.visible(); ok {
				st.Objects++
				st.Bytes += v.Meta.Size
			}
		}
		if len(es) < 1024 {
			break
		}
		from = es[len(es)-1].SK + "\x00"
	}
	ups, err := s.uploads.Range(ctx, bucketID, "", 0)
	if err != nil {
		return st, fmt.Errorf("bucket stats: %w", err)
	}
	for _, u := range ups {
		if !u.Value.Del {
			st.UnfinishedUploads++
		}
	}
	return st, nil
}
