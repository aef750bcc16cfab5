// Package daemon is entrepot's composition root: from a validated
// config.Config it builds the storage (daemon/model), the S3 handler
// (daemon/s3) and the admin API (daemon/admin), binds every listener, serves
// them, and shuts them down in reverse order.
//
//	d, err := daemon.New(ctx, cfg, daemon.Options{Logger: log, Version: v, Stdout: os.Stdout})
//	if err != nil { ... }            // bad data dir, address in use, ...
//	defer d.Close()                  // closes the store last
//	err = d.Run(ctx)                 // serves until ctx is cancelled, then drains in-flight requests
//
// New does only fast work (open the database, bind sockets) so a node serves
// within a second of starting. Ready is closed once every listener serves;
// /health answers 200 from then until shutdown begins.
//
// In development mode (config.Dev) New also makes sure an access key named
// "dev", allowed to create buckets, exists, and keeps its credentials in
// <dev dir>/dev-credentials.json (mode 0600). Run prints them to
// Options.Stdout — never to the log.
//
// Cluster mode starts when rpc.secret_file is set. New then also builds,
// in this order: the libp2p host (daemon/p2p: identity <metadata_dir>/node_key,
// peer list <metadata_dir>/peer_list, mDNS, bootstrap, [nat] port mapping),
// rpc (daemon/rpc), the cluster manager (daemon/cluster: state in
// <metadata_dir>/cluster_state, this node's declared role from zone,
// capacity/gateway, tags, decommission and replaces), the table replicator
// (daemon/table, handed to model.Open) and block replication
// (block.Store.EnableReplication on the model's block store). Run starts
// discovery, liveness, gossip and table anti-entropy; Close stops them before
// the store and closes the host last. Until a layout exists (fewer storage
// nodes than the replication factor have declared a role) S3 answers 503
// ServiceUnavailable. The admin API's cluster endpoints (/v1/node/*,
// /v1/cluster/*, /v1/layout) are served by clusterAdmin; members answer each
// other's "node/info" rpc so `entrepot status` shows every node's disk.
//
// Only cli and tests import this package (see deps_test.go).
package daemon
