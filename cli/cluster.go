package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/entrepot/entrepot/daemon/admin"
	"github.com/entrepot/entrepot/daemon/admin/adminclient"
)

// shortIDLen is how much of a node ID tables show; `node retire` accepts
// any unique prefix of at least 8 characters.
const shortIDLen = 16

func shortID(id string) string {
	if len(id) <= shortIDLen {
		return id
	}
	return id[:shortIDLen]
}

func (a *app) nodeCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "node",
		Usage: "this node's identity; decommission members",
		Subcommands: []*ucli.Command{
			{
				Name:  "id",
				Usage: "print the node ID and the addresses other nodes can use in rpc.bootstrap",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					return show(a, c, func(cl *adminclient.Client) (admin.NodeIdentity, error) {
						return cl.NodeID(c.Context)
					}, func(w io.Writer, id admin.NodeIdentity) error {
						fmt.Fprintln(w, id.ID)
						for _, addr := range id.Addrs {
							fmt.Fprintln(w, addr)
						}
						return nil
					})
				},
			},
			{
				Name:      "retire",
				Usage:     "decommission a node for good: it leaves the layout, its data moves to the others, and it stays out even if it starts again",
				ArgsUsage: "<node id or unique prefix>",
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usageError("node retire: give exactly one node ID")
					}
					if _, err := call(a, c, func(cl *adminclient.Client) (struct{}, error) {
						return struct{}{}, cl.RetireNode(c.Context, c.Args().First())
					}); err != nil {
						return err
					}
					fmt.Fprintf(a.env.Stdout, "node %s retired: a new layout without it is being computed; watch `entrepot status`\n", c.Args().First())
					return nil
				},
			},
		},
	}
}

func (a *app) layoutCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "layout",
		Usage: "the cluster layout (which nodes hold which partitions)",
		Subcommands: []*ucli.Command{
			{
				Name:  "show",
				Usage: "show the live layout versions, per-node partition counts and the last change",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					return show(a, c, func(cl *adminclient.Client) (admin.LayoutInfo, error) {
						return cl.Layout(c.Context)
					}, printLayout)
				},
			},
		},
	}
}

func printLayout(w io.Writer, l admin.LayoutInfo) error {
	if len(l.Versions) == 0 {
		fmt.Fprintf(w, "No layout yet: fewer storage nodes than the replication factor (%d) have declared a role.\n", l.RF)
		return nil
	}
	for _, v := range l.Versions {
		state := "syncing"
		if v.Synced {
			state = "synced"
		}
		reads := ""
		if v.Version == l.ReadVersion {
			reads = ", used by reads"
		}
		fmt.Fprintf(w, "==== LAYOUT VERSION %d (%s, %s%s) ====\n", v.Version, v.ID, state, reads)
		t := newTable(w, "ID", "ZONE", "CAPACITY", "TAGS", "PARTITIONS", "SYNCED TO")
		for _, n := range v.Nodes {
			capacity := "gateway"
			if n.Capacity > 0 {
				capacity = humanBytes(n.Capacity)
			}
			t.row(shortID(n.ID), n.Zone, capacity, tags(n.Tags), fmt.Sprint(n.Partitions), fmt.Sprintf("v%d", n.Acked))
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Replication factor: %d\n", l.RF)
	if lc := l.LastChange; lc != nil {
		if lc.From == 0 {
			fmt.Fprintf(w, "Last change: first layout v%d placed %d partition replicas\n", lc.To, lc.Moved)
		} else {
			fmt.Fprintf(w, "Last change: v%d -> v%d moved %d partition replicas (minimum possible %d)\n", lc.From, lc.To, lc.Moved, lc.Minimum)
		}
	}
	return nil
}

func tags(ts []string) string {
	if len(ts) == 0 {
		return "-"
	}
	return strings.Join(ts, ",")
}

// statusJSON is `status --json` in cluster mode: the node's status plus the cluster's.
type statusJSON struct {
	admin.Status
	Cluster *admin.ClusterStatus `json:"cluster,omitempty"`
}

// clusterStatus returns the cluster section, or nil on a node running alone.
func clusterStatusOf(c *ucli.Context, a *app) (*admin.ClusterStatus, error) {
	cl, explain, err := a.client(c)
	if err != nil {
		return nil, err
	}
	cs, err := cl.ClusterStatus(c.Context)
	var ae *adminclient.Error
	if errors.Is(err, admin.ErrNotClustered) || (errors.As(err, &ae) && ae.Code == admin.CodeNoSuchEndpoint) {
		return nil, nil // a node running alone, or an older daemon
	}
	if err != nil {
		return nil, explain(err)
	}
	return &cs, nil
}

// addrOf renders a member's first address as host:port when it is plain TCP.
func addrOf(addrs []string) string {
	for _, a := range addrs {
		p := strings.Split(strings.TrimPrefix(a, "/"), "/")
		if len(p) >= 4 && (p[0] == "ip4" || p[0] == "ip6" || p[0] == "dns4" || p[0] == "dns6" || p[0] == "dns") && p[2] == "tcp" {
			if p[0] == "ip6" {
				return "[" + p[1] + "]:" + p[3]
			}
			return p[1] + ":" + p[3]
		}
	}
	if len(addrs) > 0 {
		return addrs[0]
	}
	return "-"
}

func rtt(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func dataAvail(m admin.ClusterMember) string {
	if m.DataTotal <= 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s (%.1f%%)", humanBytes(m.DataAvail), humanBytes(m.DataTotal), 100*float64(m.DataAvail)/float64(m.DataTotal))
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// printCluster renders the cluster section of `entrepot status`.
func printCluster(w io.Writer, cs admin.ClusterStatus) error {
	var healthy, failed []admin.ClusterMember
	for _, m := range cs.Nodes {
		if m.Up {
			healthy = append(healthy, m)
		} else if !m.Retired {
			failed = append(failed, m)
		}
	}
	fmt.Fprintf(w, "==== HEALTHY NODES (%d) ====\n", len(healthy))
	t := newTable(w, "ID", "HOSTNAME", "ADDRESS", "TAGS", "ZONE", "CAPACITY", "DATA AVAIL", "REACH", "RTT", "PARTITIONS")
	for _, m := range healthy {
		capacity := "gateway"
		if m.Capacity > 0 {
			capacity = humanBytes(m.Capacity)
		}
		if m.Retired {
			capacity += " (retired)"
		}
		t.row(shortID(m.ID), firstNonEmpty(m.Hostname, "-"), addrOf(m.Addrs), tags(m.Tags), firstNonEmpty(m.Zone, "-"),
			capacity, dataAvail(m), m.Reachability, rtt(m.RTT), fmt.Sprint(m.Partitions))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	layoutLine := "none yet (fewer storage nodes than the replication factor)"
	if cs.Ready {
		if cs.Synced {
			layoutLine = fmt.Sprintf("version %d (synced)", cs.LayoutVersion)
		} else {
			layoutLine = fmt.Sprintf("reads use version %d, version %d is syncing", cs.LayoutVersion, cs.NewestLayout)
		}
	}
	kv := []string{
		"Replication", fmt.Sprintf("factor %d, read quorum %d, write quorum %d", cs.RF, cs.ReadQuorum, cs.WriteQuorum),
		"Layout", layoutLine,
	}
	if cs.Partitions.Total > 0 {
		kv = append(kv, "Partitions", fmt.Sprintf("%d with quorum, %d without quorum, %d with every replica up (of %d)",
			cs.Partitions.WithQuorum, cs.Partitions.WithoutQuorum, cs.Partitions.AllUp, cs.Partitions.Total))
	}
	if len(cs.Tables) > 0 {
		kv = append(kv, "Table sync", tableSync(cs.Tables))
	}
	if len(cs.Blocks) > 0 {
		rb := cs.Rebalance
		line := fmt.Sprintf("resync queue %d, errored %d", rb.QueueLength, rb.Errored)
		if rb.Active {
			line += fmt.Sprintf(", rebalance %.0f%% (%s moved", 100*rb.Progress, humanBytes(rb.BytesMoved))
			if rb.ETA > 0 {
				line += ", ETA " + rb.ETA.Round(time.Second).String()
			}
			line += ")"
		}
		kv = append(kv, "Blocks", line)
	}
	if err := fields(w, kv...); err != nil {
		return err
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\n==== FAILED NODES (%d) ====\n", len(failed))
		t := newTable(w, "ID", "HOSTNAME", "ADDRESS", "TAGS", "ZONE", "CAPACITY", "LAST SEEN")
		for _, m := range failed {
			capacity := "gateway"
			if m.Capacity > 0 {
				capacity = humanBytes(m.Capacity)
			}
			t.row(shortID(m.ID), firstNonEmpty(m.Hostname, "-"), addrOf(m.Addrs), tags(m.Tags), firstNonEmpty(m.Zone, "-"), capacity, ago(m.LastSeen))
		}
		return t.flush()
	}
	return nil
}

// tableSyncJSON is the part of the table layer's status document shown here.
type tableSyncJSON struct {
	SyncedVersion uint64    `json:"synced_version"`
	NewestVersion uint64    `json:"newest_version"`
	Syncing       bool      `json:"syncing"`
	Progress      float64   `json:"sync_progress"`
	LastFullSync  time.Time `json:"last_full_sync"`
	LastError     string    `json:"last_error"`
	Tables        []struct {
		Items int64 `json:"items"`
	} `json:"tables"`
}

// tableSync renders table replication in one line; an unknown document
// falls back to its scalar fields.
func tableSync(raw json.RawMessage) string {
	var ts tableSyncJSON
	if err := json.Unmarshal(raw, &ts); err != nil || ts.NewestVersion == 0 && ts.SyncedVersion == 0 && len(ts.Tables) == 0 {
		return summarise(raw)
	}
	var items int64
	for _, t := range ts.Tables {
		items += t.Items
	}
	line := fmt.Sprintf("synced to layout v%d", ts.SyncedVersion)
	if ts.Syncing {
		line = fmt.Sprintf("syncing %.0f%% (synced to v%d, newest v%d)", 100*ts.Progress, ts.SyncedVersion, ts.NewestVersion)
	}
	line += fmt.Sprintf(", %d items", items)
	if !ts.LastFullSync.IsZero() {
		line += ", last full round " + ago(ts.LastFullSync)
	}
	if ts.LastError != "" {
		line += ", last error: " + ts.LastError
	}
	return line
}

// summarise renders a replication status document's top-level scalar
// fields as "key value, ..." (its shape belongs to the table layer).
func summarise(raw json.RawMessage) string {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		switch v.(type) {
		case string, float64, bool:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %v", strings.ReplaceAll(k, "_", " "), m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func (a *app) repairCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "repair",
		Usage: "run repairs now instead of waiting for the background workers",
		Subcommands: []*ucli.Command{
			{
				Name:  "tables",
				Usage: "one full anti-entropy round of the metadata tables with the other replicas",
				Action: func(c *ucli.Context) error {
					start := time.Now()
					if _, err := call(a, c, func(cl *adminclient.Client) (struct{}, error) {
						return struct{}{}, cl.SyncTables(c.Context)
					}); err != nil {
						return err
					}
					fmt.Fprintf(a.env.Stdout, "tables in sync with the other replicas (%s)\n", time.Since(start).Round(time.Millisecond))
					return nil
				},
			},
			{
				Name:  "blocks",
				Usage: "scrub: verify every local block and fetch missing or damaged ones from other replicas",
				Flags: []ucli.Flag{jsonFlag()},
				Action: func(c *ucli.Context) error {
					return show(a, c, func(cl *adminclient.Client) (admin.ScrubResult, error) {
						return cl.Scrub(c.Context)
					}, func(w io.Writer, r admin.ScrubResult) error {
						return fields(w, "Checked", fmt.Sprint(r.Checked), "Missing", fmt.Sprint(r.Missing),
							"Corrupt", fmt.Sprint(r.Corrupt), "Repaired", fmt.Sprint(r.Repaired))
					})
				},
			},
		},
	}
}
