package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a fresh registry with the Go runtime and process
// collectors and an entrepot_build_info gauge carrying version.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "entrepot_build_info",
		Help:        "Always 1; labels carry the entrepot version and the Go version.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// HTTP instruments one HTTP server: entrepot_http_requests_total{server,method,code},
// entrepot_http_request_duration_seconds{server,method} and
// entrepot_http_requests_in_flight{server}.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewHTTP registers the metrics of the server called name (e.g. "s3", "admin").
func NewHTTP(reg prometheus.Registerer, name string) (*HTTP, error) {
	r := prometheus.WrapRegistererWith(prometheus.Labels{"server": name}, reg)
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entrepot_http_requests_total",
			Help: "HTTP requests answered, by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "entrepot_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, until the handler returned.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "entrepot_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	for _, c := range []prometheus.Collector{h.requests, h.duration, h.inFlight} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Wrap instruments next.
func (h *HTTP) Wrap(next http.Handler) http.Handler {
	return promhttp.InstrumentHandlerInFlight(h.inFlight,
		promhttp.InstrumentHandlerDuration(h.duration,
			promhttp.InstrumentHandlerCounter(h.requests, next)))
}
