// Package layout computes which nodes hold which partitions.
//
// It is pure and deterministic: every node that knows the same declared roles and
// the same previous layout computes the same new layout, byte for byte. There is
// no imperative "assign/apply" step: the cluster converges on the layout derived
// from each node's own declared role (zone, capacity or gateway, tags).
//
// The key space is cut into NumPartitions (256) partitions by the first byte of a
// hash. Each partition gets RF replicas on distinct nodes, in distinct zones
// whenever there are at least RF zones (otherwise spread over as many zones as
// exist). Replicas are capacity-weighted: each zone gets a share of the
// NumPartitions×RF replica slots proportional to its capacity, capped at one replica
// per partition per zone (so the smallest zone caps usable capacity when there are
// exactly RF zones, as in any zone-redundant design), and a zone's share is split
// among its nodes by capacity.
//
// The assignment is a max-flow problem (partition → zone slot → node → sink with
// per-node quotas), solved as a min-cost max-flow where keeping a replica of the
// previous layout costs 0 and placing a new one costs 1: among all assignments that
// meet the quotas, the one that moves the fewest replicas is chosen.
//
// Versions: a layout carries a Version counter and a Digest of its content. Layouts
// are totally ordered by (Version, Digest), so when two nodes compute different
// layouts with the same counter concurrently, everyone keeps the same winner, and
// two different layouts never share an identity (Version, Digest).
package layout
