// Package metrics builds the per-daemon Prometheus registry and the HTTP
// instrumentation shared by the daemon's listeners.
//
// There is no global registry: every daemon calls [NewRegistry], passes the
// registry (as a prometheus.Registerer) to the parts that declare their own
// metrics, and serves it with [Handler]. Metric names follow
// entrepot_<subsystem>_<name>.
package metrics
