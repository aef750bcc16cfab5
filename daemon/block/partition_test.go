package block_test

import (
	"testing"

	"github.com/entrepot/entrepot/daemon/block"
	"github.com/entrepot/entrepot/daemon/table"
)

// A block must live where its block_ref entries (pk = raw hash) live.
func TestPartitionMatchesBlockRefTable(t *testing.T) {
	for i := range 200 {
		h := block.Sum([]byte{byte(i), byte(i >> 8)})
		if got, want := block.Partition(h), table.Partition(string(h[:])); got != want {
			t.Fatalf("Partition(%s) = %d, table.Partition = %d", h, got, want)
		}
	}
}
