package table

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/entrepot/entrepot/daemon/db"
)

// reg is a last-writer-wins string register used to exercise Local.
type reg struct {
	TS  uint64
	Del bool
	Val string
}

type regSchema struct{ hookCalls *int }

func (regSchema) Table() db.TableID              { return db.TableBucket }
func (regSchema) Encode(v reg) ([]byte, error)   { return json.Marshal(v) }
func (regSchema) Timestamp(v reg) uint64         { return v.TS }
func (regSchema) Tombstone(_ reg, ts uint64) reg { return reg{TS: ts, Del: true} }
func (regSchema) IsTombstone(v reg) bool         { return v.Del }
func (regSchema) Decode(b []byte) (reg, error) {
	var v reg
	return v, json.Unmarshal(b, &v)
}
func (regSchema) Merge(a, b reg) reg {
	if b.TS > a.TS || (b.TS == a.TS && (b.Del && !a.Del || b.Del == a.Del && b.Val > a.Val)) {
		return b
	}
	return a
}
func (s regSchema) Updated(b *db.Batch, pk, sk string, old reg, hadOld bool, merged reg) error {
	*s.hookCalls++
	return nil
}

func newTable(t *testing.T) (*Local[reg], *int) {
	t.Helper()
	d, err := db.Open(t.TempDir(), db.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	n := new(int)
	return NewLocal[reg](d, regSchema{hookCalls: n}), n
}

func TestInsertMerge(t *testing.T) {
	cases := []struct {
		name   string
		writes []reg
		want   reg
		hooks  int
	}{
		{"single", []reg{{TS: 1, Val: "a"}}, reg{TS: 1, Val: "a"}, 1},
		{"newer wins", []reg{{TS: 1, Val: "a"}, {TS: 2, Val: "b"}}, reg{TS: 2, Val: "b"}, 2},
		{"older loses", []reg{{TS: 2, Val: "b"}, {TS: 1, Val: "a"}}, reg{TS: 2, Val: "b"}, 1},
		{"idempotent", []reg{{TS: 3, Val: "c"}, {TS: 3, Val: "c"}}, reg{TS: 3, Val: "c"}, 1},
		{"tie broken by value", []reg{{TS: 3, Val: "z"}, {TS: 3, Val: "c"}}, reg{TS: 3, Val: "z"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb, hooks := newTable(t)
			ctx := context.Background()
			for _, w := range tc.writes {
				if _, err := tb.Insert(ctx, Entry[reg]{PK: "p", SK: "s", Value: w}); err != nil {
					t.Fatal(err)
				}
			}
			got, ok, err := tb.Get(ctx, "p", "s")
			if err != nil || !ok || got != tc.want {
				t.Fatalf("Get = %+v %v %v, want %+v", got, ok, err, tc.want)
			}
			if *hooks != tc.hooks {
				t.Fatalf("hook ran %d times, want %d", *hooks, tc.hooks)
			}
		})
	}
}

func TestDeleteRangeAndPurge(t *testing.T) {
	tb, _ := newTable(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := tb.Insert(ctx, Entry[reg]{PK: "p", SK: fmt.Sprintf("k%d", i), Value: reg{TS: 10, Val: "v"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.Insert(ctx, Entry[reg]{PK: "q", SK: "k0", Value: reg{TS: 10}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.Delete(ctx, "p", "k1"); err != nil {
		t.Fatal(err)
	}
	v, ok, _ := tb.Get(ctx, "p", "k1")
	if !ok || !v.Del || v.TS <= 10 {
		t.Fatalf("after delete: %+v %v", v, ok)
	}
	got, err := tb.Range(ctx, "p", "k1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].SK != "k1" || !got[0].Value.Del || got[2].SK != "k3" {
		t.Fatalf("Range = %+v", got)
	}
	all, _ := tb.Range(ctx, "p", "", 0)
	if len(all) != 5 {
		t.Fatalf("Range(all) = %d entries, want 5 (other pk excluded)", len(all))
	}
	n, err := tb.PurgeTombstones(ctx, v.TS+1)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	if _, ok, _ := tb.Get(ctx, "p", "k1"); ok {
		t.Fatal("tombstone survived purge")
	}
}

func TestNextTSAndPartition(t *testing.T) {
	now := time.UnixMilli(1000)
	cases := []struct {
		name string
		last uint64
		want uint64
	}{
		{"clock ahead", 10, 1000},
		{"clock behind", 5000, 5001},
		{"equal", 1000, 1001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextTS(now, tc.last); got != tc.want {
				t.Fatalf("NextTS = %d, want %d", got, tc.want)
			}
		})
	}
	seen := map[uint8]bool{}
	for i := range 2000 {
		seen[Partition(fmt.Sprint(i))] = true
	}
	if len(seen) < 250 {
		t.Fatalf("2000 keys hit only %d partitions", len(seen))
	}
	if Partition("x") != Partition("x") {
		t.Fatal("Partition not deterministic")
	}
}
