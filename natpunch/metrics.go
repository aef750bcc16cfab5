package natpunch

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	mappingUp       *prometheus.GaugeVec
	renewals        *prometheus.CounterVec
	failures        *prometheus.CounterVec
	writes          *prometheus.CounterVec
	probes          *prometheus.CounterVec
	probeDuration   prometheus.Histogram
	doubleNAT       prometheus.Gauge
	rediscoveries   *prometheus.CounterVec
	externalChanges prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg when it is
// not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "entrepot", "natpunch"
	m := &metrics{
		mappingUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "mapping_up", Help: "1 when the port mapping is held on the router, 0 otherwise."},
			[]string{"proto", "port"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "mapping_renewals_total", Help: "Successful mapping creations and renewals."},
			[]string{"proto", "port"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "mapping_failures_total", Help: "Failed mapping attempts, by method and router error code."},
			[]string{"proto", "port", "method", "code"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "router_writes_total", Help: "Mapping add/renew/delete requests sent to the router."},
			[]string{"method"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "probes_total", Help: "Gateway probes, by result."}, []string{"result"}),
		probeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "probe_duration_seconds", Help: "Duration of gateway probes.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}}),
		doubleNAT: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "double_nat", Help: "1 when the router's external address is private or shared (double NAT / CGNAT)."}),
		rediscoveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rediscoveries_total", Help: "Gateway rediscoveries, by reason."}, []string{"reason"}),
		externalChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "external_ip_changes_total", Help: "Changes of the router's external address."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.mappingUp, m.renewals, m.failures, m.writes, m.probes,
		m.probeDuration, m.doubleNAT, m.rediscoveries, m.externalChanges} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
