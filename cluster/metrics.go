package cluster

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// clusterMetrics are the cluster's collectors; it is also the go-redis
// hook that times every call and counts its errors.
type clusterMetrics struct {
	latency  prometheus.Histogram
	errors   prometheus.Counter
	received *prometheus.CounterVec
	ignored  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, c *Cluster) *clusterMetrics {
	m := &clusterMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "isrproxy_cluster_redis_duration_seconds", Help: "Time of one Redis call (blocking reads aside).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 10),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "isrproxy_cluster_redis_errors_total", Help: "Redis calls that failed or timed out.",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isrproxy_cluster_pages_received_total",
			Help: "Pages received from peers through Redis: by the revalidation stream, the second level on a miss, or the warm-up.",
		}, []string{"via"}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "isrproxy_cluster_ignored_total", Help: "Foreign or corrupt data found under CLUSTER_NAME and ignored.",
		}),
	}
	for _, via := range []string{"stream", "miss", "warm"} {
		m.received.WithLabelValues(via)
	}
	if reg != nil {
		reg.MustRegister(m.latency, m.errors, m.received, m.ignored,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "isrproxy_cluster_replicas", Help: "Live replicas seen at the last heartbeat, this one included (0: Redis unreachable).",
			}, func() float64 {
				if !c.up.Load() {
					return 0
				}
				return float64(len(c.Live()))
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "isrproxy_cluster_up", Help: "1 when Redis answers, 0 while this replica serves alone (degraded).",
			}, func() float64 {
				if c.up.Load() {
					return 1
				}
				return 0
			}),
		)
	}
	return m
}

func (m *clusterMetrics) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			m.errors.Inc()
		}
		return conn, err
	}
}

func (m *clusterMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) {
			m.errors.Inc()
		}
		switch cmd.Name() {
		case "xread", "blpop":
		default:
			m.latency.Observe(time.Since(start).Seconds())
		}
		return err
	}
}

func (m *clusterMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		if err != nil && !errors.Is(err, redis.Nil) {
			m.errors.Inc()
		}
		m.latency.Observe(time.Since(start).Seconds())
		return err
	}
}
