package crash

import (
	"slices"
	"testing"
)

func TestLedger(t *testing.T) {
	type step struct {
		ver    int
		ok     bool
		settle bool // settle to ver instead of recording a write
	}
	cases := []struct {
		name  string
		steps []step
		want  []int // acceptable versions, -1 = absent
	}{
		{name: "acknowledged", steps: []step{{ver: 0, ok: true}}, want: []int{0}},
		{name: "no answer", steps: []step{{ver: 0}}, want: []int{-1, 0}},
		{name: "no answer after ack", steps: []step{{ver: 1, ok: true}, {ver: 2}}, want: []int{1, 2}},
		{name: "ack supersedes", steps: []step{{ver: 1}, {ver: 2}, {ver: 3, ok: true}}, want: []int{3}},
		{name: "settled then no answer", steps: []step{{ver: 1}, {ver: 1, settle: true}, {ver: 2}}, want: []int{1, 2}},
		{name: "settled absent", steps: []step{{ver: 1}, {ver: -1, settle: true}, {ver: 2}}, want: []int{-1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger()
			for _, s := range tc.steps {
				if s.settle {
					l.settle("k", version{v: s.ver, size: 1})
				} else {
					l.record("k", "put", version{v: s.ver, size: 1}, s.ok)
				}
			}
			var got []int
			for _, v := range l.snapshot()["k"] {
				got = append(got, v.v)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("acceptable versions %v, want %v", got, tc.want)
			}
		})
	}
}

func TestContentDeterministic(t *testing.T) {
	a, b, c := content("k", 1, 1000), content("k", 1, 1000), content("k", 2, 1000)
	if !slices.Equal(a, b) || slices.Equal(a, c) || slices.Equal(a, content("j", 1, 1000)) {
		t.Fatal("content must depend on key and version only")
	}
}
