package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/entrepot/entrepot/daemon/layout"
)

// stateVersion is the first byte of the encoded state (file and wire).
const stateVersion = 1

// RoleEntry is one node's declared role, last-writer-wins by Timestamp.
type RoleEntry struct {
	Role    layout.Role `json:"role"`
	Retired bool        `json:"retired,omitempty"`
	// RetiredByOperator: retired with `entrepot node retire` (Manager.Retire),
	// not by the node's own configuration. Such a retirement is kept when the
	// node starts again with a configuration that does not decommission it.
	RetiredByOperator bool   `json:"retired_by_operator,omitempty"`
	Replaces          string `json:"replaces,omitempty"`
	Hostname          string `json:"hostname,omitempty"`
	Timestamp         uint64 `json:"ts"`
}

func (e RoleEntry) wins(o RoleEntry) bool {
	if e.Timestamp != o.Timestamp {
		return e.Timestamp > o.Timestamp
	}
	a, _ := json.Marshal(e)
	b, _ := json.Marshal(o)
	return bytes.Compare(a, b) > 0
}

// State is the replicated cluster state.
type State struct {
	RF      int                  `json:"rf"`
	Roles   map[string]RoleEntry `json:"roles"`
	Layouts []*layout.Layout     `json:"-"` // live versions, oldest first
	Acks    map[string]uint64    `json:"acks"`
}

type wireState struct {
	RF      int                  `json:"rf"`
	Roles   map[string]RoleEntry `json:"roles"`
	Layouts [][]byte             `json:"layouts"`
	Acks    map[string]uint64    `json:"acks"`
}

func newState(rf int) *State {
	return &State{RF: rf, Roles: map[string]RoleEntry{}, Acks: map[string]uint64{}}
}

// Encode returns the versioned encoding of s.
func (s *State) Encode() ([]byte, error) {
	w := wireState{RF: s.RF, Roles: s.Roles, Acks: s.Acks}
	for _, l := range s.Layouts {
		w.Layouts = append(w.Layouts, l.Encode())
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return append([]byte{stateVersion}, b...), nil
}

// DecodeState parses an encoded state.
func DecodeState(b []byte) (*State, error) {
	if len(b) < 1 || b[0] != stateVersion {
		return nil, fmt.Errorf("cluster state: unknown format")
	}
	var w wireState
	if err := json.Unmarshal(b[1:], &w); err != nil {
		return nil, fmt.Errorf("cluster state: %w", err)
	}
	s := newState(w.RF)
	for k, v := range w.Roles {
		s.Roles[k] = v
	}
	for k, v := range w.Acks {
		s.Acks[k] = v
	}
	for _, lb := range w.Layouts {
		l, err := layout.Decode(lb)
		if err != nil {
			return nil, fmt.Errorf("cluster state: %w", err)
		}
		s.Layouts = append(s.Layouts, l)
	}
	s.normalise()
	return s, nil
}

// normalise keeps one layout per version (the Compare winner), sorted oldest first.
func (s *State) normalise() {
	byV := map[uint64]*layout.Layout{}
	for _, l := range s.Layouts {
		if cur, ok := byV[l.Version]; !ok || layout.Compare(l, cur) > 0 {
			byV[l.Version] = l
		}
	}
	s.Layouts = s.Layouts[:0]
	for _, l := range byV {
		s.Layouts = append(s.Layouts, l)
	}
	sort.Slice(s.Layouts, func(i, j int) bool { return s.Layouts[i].Version < s.Layouts[j].Version })
}

// Merge folds o into s and reports whether s changed. The caller checks that
// both have the same replication factor first.
func (s *State) Merge(o *State) bool {
	changed := false
	for id, e := range o.Roles {
		if cur, ok := s.Roles[id]; !ok || e.wins(cur) {
			s.Roles[id] = e
			changed = true
		}
	}
	for id, v := range o.Acks {
		if v > s.Acks[id] {
			s.Acks[id] = v
			changed = true
		}
	}
	before := s.layoutIDs()
	s.Layouts = append(s.Layouts, o.Layouts...)
	s.normalise()
	s.prune()
	if s.layoutIDs() != before {
		changed = true
	}
	return changed
}

func (s *State) layoutIDs() string {
	var b bytes.Buffer
	for _, l := range s.Layouts {
		b.WriteString(l.ID())
		b.WriteByte(' ')
	}
	return b.String()
}

// ActiveRoles are the roles of every node not retired (and not replaced).
func (s *State) ActiveRoles() map[string]layout.Role {
	replaced := map[string]bool{}
	for _, e := range s.Roles {
		if e.Replaces != "" && !e.Retired {
			replaced[e.Replaces] = true
		}
	}
	out := map[string]layout.Role{}
	for id, e := range s.Roles {
		if !e.Retired && !replaced[id] {
			out[id] = e.Role
		}
	}
	return out
}

// Newest is the newest live layout, or nil.
func (s *State) Newest() *layout.Layout {
	if len(s.Layouts) == 0 {
		return nil
	}
	return s.Layouts[len(s.Layouts)-1]
}

// synced reports whether every storage node of l acknowledged syncing version l.Version.
// The first layout ever (nothing older live) needs no sync.
func (s *State) synced(i int) bool {
	if i == 0 {
		return true
	}
	l := s.Layouts[i]
	for _, n := range l.Nodes {
		if !n.Role.Gateway() && s.Acks[n.ID] < l.Version {
			return false
		}
	}
	return true
}

// ReadIndex is the index of the layout reads use: the newest synced one.
func (s *State) ReadIndex() int {
	for i := len(s.Layouts) - 1; i > 0; i-- {
		if s.synced(i) {
			return i
		}
	}
	return 0
}

// prune drops live layouts older than the read layout.
func (s *State) prune() {
	if i := s.ReadIndex(); i > 0 {
		s.Layouts = append([]*layout.Layout{}, s.Layouts[i:]...)
	}
}

// Advance derives the next layout when the declared roles changed. It returns
// the new layout, or nil when nothing changed or no layout is possible yet.
func (s *State) Advance() (*layout.Layout, error) {
	roles := s.ActiveRoles()
	prev := s.Newest()
	if prev != nil && prev.SameRoles(roles, s.RF) {
		return nil, nil
	}
	next, err := layout.Compute(prev, roles, s.RF)
	if err != nil {
		return nil, err
	}
	if next == prev {
		return nil, nil
	}
	s.Layouts = append(s.Layouts, next)
	s.normalise()
	return next, nil
}
