// Package cluster keeps the membership and layout state every node agrees on,
// without a leader: declared roles, the live layout versions and who has
// finished syncing to which version.
//
// The state is a CRDT, merged by gossip over rpc (push-pull, periodic and on change):
//   - roles: a last-writer-wins map node ID → role entry. Each node writes only its
//     own entry from its own configuration (zone, capacity or gateway, tags), except
//     retirement, which an operator may write for a dead node;
//   - layouts: the set of live layout versions, one per version number; when two
//     nodes computed different layouts with the same number, the higher digest wins
//     everywhere (layout.Compare);
//   - sync acks: per node, the highest layout version it has fully synced (max-merge).
//
// After every merge each node checks whether the newest layout still matches the
// declared roles; if not, it derives the next layout deterministically
// (layout.Compute), so nodes that saw the same roles produce the same layout.
// Writes go to a quorum in every live layout; reads use the newest layout that all
// of its storage nodes have synced; older versions are dropped once it is synced.
package cluster
