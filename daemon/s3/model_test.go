package s3

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/model"
)

// The HTTP tests also run against the real store on a temporary directory.
var (
	_ Backend   = (*model.Store)(nil)
	_ testStore = (*model.Store)(nil)
)

func openModel(t *testing.T) testStore {
	t.Helper()
	dir := t.TempDir()
	st, err := model.Open(context.Background(), model.Config{
		MetadataDir: filepath.Join(dir, "meta"), DataDir: filepath.Join(dir, "data"),
		BlockSize: 256 << 10, NoFsync: true, GCDelay: time.Minute,
	})
	if err != nil {
		t.Fatalf("open model: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close model: %v", err)
		}
	})
	return st
}
