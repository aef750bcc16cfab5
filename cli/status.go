package cli

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"
)

func (a *app) statusCommand() *ucli.Command {
	return &ucli.Command{
		Name:   "status",
		Usage:  "show the node's status and, in a cluster, every member, the layout and sync progress",
		Flags:  []ucli.Flag{jsonFlag()},
		Action: a.status,
	}
}

func (a *app) status(c *ucli.Context) error {
	cl, explain, err := a.client(c)
	if err != nil {
		return err
	}
	st, err := cl.Status(c.Context)
	cs, cerr := clusterStatusOf(c, a)
	if err != nil {
		// A cluster node without quorum cannot count its objects; still show the cluster.
		if cs == nil || wantJSON(c) {
			return explain(err)
		}
		fmt.Fprintf(a.env.Stderr, "entrepot: node status unavailable: %v\n", err)
		return printCluster(a.env.Stdout, *cs)
	}
	if cerr != nil {
		return cerr
	}
	w := a.env.Stdout
	if wantJSON(c) {
		if cs == nil {
			return printJSON(w, st)
		}
		return printJSON(w, statusJSON{Status: st, Cluster: cs})
	}
	n := st.Node
	health := "healthy"
	if !st.Healthy {
		health = "NOT SERVING"
	}
	capacity := "-"
	if n.Capacity > 0 {
		capacity = humanBytes(n.Capacity)
	}
	avail := "-"
	if n.DataTotal > 0 {
		avail = fmt.Sprintf("%s / %s (%.1f%%)", humanBytes(n.DataAvail), humanBytes(n.DataTotal), 100*float64(n.DataAvail)/float64(n.DataTotal))
	}
	uptime := "-"
	if !n.Started.IsZero() {
		uptime = time.Since(n.Started).Round(time.Second).String()
	}
	fmt.Fprintf(w, "==== NODE (%s) ====\n", health)
	t := newTable(w, "ID", "HOSTNAME", "ZONE", "CAPACITY", "DATA AVAIL", "VERSION", "UPTIME")
	t.row(n.NodeID, n.Hostname, n.Zone, capacity, avail, n.Version, uptime)
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := fields(w,
		"S3 endpoint", firstNonEmpty(st.S3Endpoint, "-"),
		"Region", firstNonEmpty(st.Region, "-"),
		"Data dir", n.DataDir,
		"Buckets", fmt.Sprint(n.Buckets),
		"Objects", fmt.Sprintf("%d (%s)", n.Objects, humanBytes(n.Bytes)),
		"Blocks", fmt.Sprintf("%d (%s on disk)", n.Blocks, humanBytes(n.BlockBytes)),
		"Blocks pending deletion", fmt.Sprint(n.PendingGC),
	); err != nil {
		return err
	}
	if cs == nil {
		return nil
	}
	fmt.Fprintln(w)
	return printCluster(w, *cs)
}
