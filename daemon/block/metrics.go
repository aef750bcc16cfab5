package block

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the entrepot_block_* families of a replicating store.
type metrics struct {
	reg            prometheus.Registerer
	cs             []prometheus.Collector
	bytesRead      prometheus.Counter
	bytesWritten   prometheus.Counter
	rebalanceBytes prometheus.Counter
}

func newMetrics(r *repl, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "entrepot_block_bytes_read_total",
			Help: "Block bytes received from or served to other nodes."}),
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "entrepot_block_bytes_written_total",
			Help: "Block bytes sent to or stored for other nodes."}),
		rebalanceBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "entrepot_block_rebalance_bytes_total",
			Help: "Block bytes pushed by resync and rebalance."}),
	}
	m.cs = []prometheus.Collector{m.bytesRead, m.bytesWritten, m.rebalanceBytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "entrepot_block_resync_queue_length",
			Help: "Entries in the persistent block resync queue."}, func() float64 { return float64(r.queueLen.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "entrepot_block_resync_errored_blocks",
			Help: "Blocks whose last resync failed."}, func() float64 { return float64(r.errored.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "entrepot_block_ram_buffer_free_bytes",
			Help: "Free room in the buffer of writes still sending to slow replicas."},
			func() float64 { return float64(r.cfg.BufferMax - r.budget.used()) }),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.cs {
		if err := reg.Register(c); err != nil {
			for _, d := range m.cs[:i] {
				reg.Unregister(d)
			}
			return nil, err
		}
	}
	m.reg = reg
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
