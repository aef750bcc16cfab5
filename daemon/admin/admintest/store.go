// Package admintest provides an in-memory fake of admin.Store for tests of the
// admin API and its clients.
package admintest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// Store is an in-memory admin.Store. Objects are simulated by Stats.
type Store struct {
	mu      sync.Mutex
	keys    map[string]model.Key
	buckets map[string]model.Bucket // by name
	// Stats per bucket name; a bucket with Stats.Objects > 0 cannot be deleted.
	Stats map[string]model.BucketStats
	// Err, when set, is returned by every call (to test internal errors).
	Err error
}

// New returns an empty store.
func New() *Store {
	return &Store{keys: map[string]model.Key{}, buckets: map[string]model.Bucket{}, Stats: map[string]model.BucketStats{}}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func copyKey(k model.Key) model.Key {
	p := make(map[string]model.Perm, len(k.Perms))
	for id, v := range k.Perms {
		p[id] = v
	}
	k.Perms = p
	return k
}

func (s *Store) GetKey(_ context.Context, id string) (model.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return model.Key{}, s.Err
	}
	k, ok := s.keys[id]
	if !ok {
		return model.Key{}, fmt.Errorf("key %s: %w", id, model.ErrNoSuchAccessKey)
	}
	return copyKey(k), nil
}

func (s *Store) CreateKey(ctx context.Context, name string) (model.Key, error) {
	return s.ImportKey(ctx, "GK"+randHex(12), randHex(32), name)
}

func (s *Store) ImportKey(_ context.Context, id, secret, name string) (model.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return model.Key{}, s.Err
	}
	if len(id) < 4 || len(secret) < 8 {
		return model.Key{}, fmt.Errorf("import key: %w", model.ErrInvalidArgument)
	}
	if _, ok := s.keys[id]; ok {
		return model.Key{}, fmt.Errorf("key %s: %w", id, model.ErrAccessKeyExists)
	}
	k := model.Key{ID: id, Secret: secret, Name: name, Created: time.Now().UTC(), Perms: map[string]model.Perm{}}
	s.keys[id] = k
	return copyKey(k), nil
}

func (s *Store) ListKeys(context.Context) ([]model.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	var out []model.Key
	for _, k := range s.keys {
		k = copyKey(k)
		k.Secret = ""
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Store) DeleteKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	if _, ok := s.keys[id]; !ok {
		return fmt.Errorf("key %s: %w", id, model.ErrNoSuchAccessKey)
	}
	delete(s.keys, id)
	return nil
}

func (s *Store) SetKeyCanCreateBucket(_ context.Context, id string, allow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("key %s: %w", id, model.ErrNoSuchAccessKey)
	}
	k.CanCreateBucket = allow
	s.keys[id] = k
	return nil
}

func (s *Store) SetPermission(_ context.Context, id, bucket string, p model.Perm) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("key %s: %w", id, model.ErrNoSuchAccessKey)
	}
	b, ok := s.buckets[bucket]
	if !ok {
		return fmt.Errorf("bucket %s: %w", bucket, model.ErrNoSuchBucket)
	}
	if !p.Read && !p.Write && !p.Owner {
		delete(k.Perms, b.ID)
	} else {
		k.Perms[b.ID] = p
	}
	s.keys[id] = k
	return nil
}

func (s *Store) CreateBucket(_ context.Context, owner, name string) (model.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return model.Bucket{}, s.Err
	}
	if len(name) < 3 || len(name) > 63 {
		return model.Bucket{}, fmt.Errorf("bucket %q: %w", name, model.ErrInvalidBucketName)
	}
	if b, ok := s.buckets[name]; ok {
		if owner != "" && b.Owner == owner {
			return model.Bucket{}, model.ErrBucketAlreadyOwnedByYou
		}
		return model.Bucket{}, model.ErrBucketAlreadyExists
	}
	b := model.Bucket{ID: randHex(16), Name: name, Created: time.Now().UTC(), Owner: owner}
	s.buckets[name] = b
	if owner != "" {
		if k, ok := s.keys[owner]; ok {
			k.Perms[b.ID] = model.Perm{Read: true, Write: true, Owner: true}
			s.keys[owner] = k
		}
	}
	return b, nil
}

func (s *Store) DeleteBucket(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		return fmt.Errorf("bucket %s: %w", name, model.ErrNoSuchBucket)
	}
	if s.Stats[name].Objects > 0 {
		return fmt.Errorf("bucket %s: %w", name, model.ErrBucketNotEmpty)
	}
	delete(s.buckets, name)
	return nil
}

func (s *Store) GetBucket(_ context.Context, name string) (model.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return model.Bucket{}, fmt.Errorf("bucket %s: %w", name, model.ErrNoSuchBucket)
	}
	return b, nil
}

func (s *Store) ListBuckets(context.Context) ([]model.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	var out []model.Bucket
	for _, b := range s.buckets {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) BucketStats(_ context.Context, name string) (model.BucketStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		return model.BucketStats{}, fmt.Errorf("bucket %s: %w", name, model.ErrNoSuchBucket)
	}
	return s.Stats[name], nil
}

func (s *Store) Status(context.Context) (model.NodeStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return model.NodeStatus{}, s.Err
	}
	return model.NodeStatus{NodeID: "fake", Hostname: "fakehost", Zone: "z1", Buckets: int64(len(s.buckets)), Version: "test"}, nil
}
