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
// Only cli and tests import this package (see deps_test.go).
package daemon
