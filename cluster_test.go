package main

// Cluster mode (REDIS_URL): several replicas that share one Redis act as
// one cache. One revalidation refetches each key once for the whole
// cluster and answers 200 only when every live replica serves the new
// page; a miss reads the page from Redis before the origin, one fill runs
// per key for the whole cluster; generations are ordered cluster-wide; a
// replica that was away catches up before it is ready; Redis down or slow
// never stops a replica serving (docs/cluster.md).

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/internal/redistest"
)

// A revalidation on any replica refetches each key once for the whole
// cluster; its answer (200) lists the replicas that confirmed, and from
// then on every replica answers the new version from memory.
func TestClusterRevalidationOnceForEveryReplica(t *testing.T) {
	o := newCountingOrigin(t)
	_, rs := startCluster(t, o, 3)
	a, b, c := rs[0], rs[1], rs[2]
	for _, path := range []string{"/one", "/two"} {
		assert.Equal(t, path+" v1", a.get(path).Body)
		for _, r := range []*replica{b, c} {
			got := r.get(path)
			assert.Equal(t, path+" v1", got.Body, "replica %s", r.node)
		}
		assert.Equal(t, 1, o.count(path), "one origin request for %s in the whole cluster", path)
	}

	o.version.Store(2)
	status, ans := b.revalidate("path=/one&path=/two")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	assert.True(t, ans.Revalidated)
	require.Len(t, ans.Results, 2)
	for _, res := range ans.Results {
		assert.Equal(t, "replaced", res.Outcome)
		require.NotEmpty(t, res.Replicas)
		assert.Equal(t, "b", res.Replicas[0], "the replica called first")
		assert.ElementsMatch(t, []string{"a", "b", "c"}, res.Replicas)
	}
	for _, path := range []string{"/one", "/two"} {
		assert.Equal(t, 2, o.count(path), "one refetch of %s for the whole cluster", path)
		for _, r := range rs {
			got := r.get(path)
			assert.Equal(t, path+" v2", got.Body, "replica %s", r.node)
			assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "replica %s", r.node)
		}
	}
	assert.Equal(t, 2, o.count("/one"), "every replica answers from memory")
	assert.GreaterOrEqual(t, a.metric(`isrproxy_cluster_pages_received_total{via="stream"}`), 2.0)
	assert.GreaterOrEqual(t, c.metric(`isrproxy_cluster_pages_received_total{via="miss"}`), 2.0)
	assert.Equal(t, 3.0, c.metric("isrproxy_cluster_replicas"))
	assert.Greater(t, c.metric("isrproxy_cluster_redis_duration_seconds_count"), 0.0)

	// Purge and soft revalidations reach every replica too.
	status, ans = a.revalidate("path=/one&mode=purge")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	assert.ElementsMatch(t, []string{"a", "b", "c"}, ans.Results[0].Replicas)
	o.version.Store(3)
	for _, r := range rs {
		assert.Equal(t, "/one v3", r.get("/one").Body, "replica %s fills afresh after the purge", r.node)
	}
	assert.Equal(t, 3, o.count("/one"), "one fill for the cluster after the purge")
	status, ans = c.revalidate("path=/two&mode=soft")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	for _, r := range rs {
		// STALE, or already the page a peer's background refetch
		// (started by its own STALE answer) published: never the old HIT.
		got := r.get("/two")
		assert.True(t, got.Header.Get("X-Cache") == "STALE" || got.Body == "/two v3",
			"replica %s: %s %q", r.node, got.Header.Get("X-Cache"), got.Body)
	}
}

// A live replica that does not confirm in time (stopped) is named in a
// 502; once its heartbeat has lapsed it no longer counts, and answers are
// 200 again without it. When it continues it catches up.
func TestClusterReplicaThatDoesNotConfirmIsNamed(t *testing.T) {
	o := newCountingOrigin(t)
	_, rs := startCluster(t, o, 3)
	a, b, c := rs[0], rs[1], rs[2]
	for _, r := range rs {
		r.get("/p")
	}
	waitReplicas(t, rs, 3)
	c.pause()
	o.version.Store(2)
	status, ans := a.revalidate("path=/p")
	assert.Equal(t, http.StatusBadGateway, status)
	assert.False(t, ans.Revalidated)
	assert.Equal(t, []string{"c"}, ans.Unconfirmed)
	assert.Contains(t, ans.Message, "c")
	require.Len(t, ans.Results, 1)
	assert.ElementsMatch(t, []string{"a", "b"}, ans.Results[0].Replicas)
	assert.Equal(t, []string{"c"}, ans.Results[0].Unconfirmed)
	assert.Equal(t, "/p v2", b.get("/p").Body)

	c.resume()
	require.Eventually(t, func() bool {
		got, err := c.fetch("/p")
		return err == nil && got.Body == "/p v2"
	}, 10*time.Second, 20*time.Millisecond, "the stopped replica catches up when it continues")

	c.kill()
	waitReplicas(t, rs[:2], 2)
	o.version.Store(3)
	status, ans = b.revalidate("path=/p")
	require.Equal(t, http.StatusOK, status, "a dead replica no longer blocks answers: %+v", ans)
	assert.ElementsMatch(t, []string{"a", "b"}, ans.Results[0].Replicas)
	assert.Equal(t, "/p v3", a.get("/p").Body)
}

// Generations are ordered for the whole cluster: two revalidations of one
// key on two replicas, and a fill racing a revalidation across replicas,
// end with the newer page on every replica.
func TestClusterNewerNeverLosesAcrossReplicas(t *testing.T) {
	o := newCountingOrigin(t)
	_, rs := startCluster(t, o, 3)
	a, b, c := rs[0], rs[1], rs[2]
	for _, r := range rs {
		r.get("/g")
	}
	o.version.Store(2)
	status, _ := a.revalidate("path=/g")
	require.Equal(t, http.StatusOK, status)
	o.version.Store(3)
	status, _ = b.revalidate("path=/g")
	require.Equal(t, http.StatusOK, status)
	for _, r := range rs {
		assert.Equal(t, "/g v3", r.get("/g").Body, "replica %s", r.node)
	}

	// Two at once: every replica ends with the same page.
	o.version.Store(4)
	var wg sync.WaitGroup
	for _, r := range []*replica{a, c} {
		wg.Go(func() { r.revalidate("path=/g") })
	}
	wg.Wait()
	first := a.get("/g").Body
	for _, r := range rs {
		assert.Equal(t, first, r.get("/g").Body, "replica %s holds the same, newest page", r.node)
	}

	// A fill on a that started before a revalidation on b, and ends after
	// it, must not bring the older page back anywhere.
	gate := make(chan struct{})
	arrived := make(chan struct{}, 1)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.URL.Path]++
		n := o.counts[r.URL.Path]
		o.mu.Unlock()
		body := r.URL.Path + " new"
		if n == 1 {
			arrived <- struct{}{}
			<-gate
			body = r.URL.Path + " old"
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(body))
	})
	fillDone := make(chan answer, 1)
	go func() { got, _ := a.fetch("/race"); fillDone <- got }()
	<-arrived
	status, ans := b.revalidate("path=/race")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	close(gate)
	got := <-fillDone
	assert.Equal(t, "/race old", got.Body, "the visitor who came before the revalidation")
	time.Sleep(200 * time.Millisecond) // the old fill has stored what it could
	for _, r := range rs {
		assert.Equal(t, "/race new", r.get("/race").Body, "replica %s", r.node)
	}
}

// The second level: a miss on one replica reads what another stored from
// Redis, without the origin; 200 concurrent misses for one cold key over
// three replicas cause one origin request; a replica that starts empty
// warms from Redis.
func TestClusterSharedSecondLevel(t *testing.T) {
	o := newCountingOrigin(t)
	rsrv, rs := startCluster(t, o, 3)
	a, b := rs[0], rs[1]
	assert.Equal(t, "/stored v1", a.get("/stored").Body)
	got := b.get("/stored")
	assert.Equal(t, "/stored v1", got.Body)
	assert.Equal(t, 1, o.count("/stored"), "b's miss was answered from Redis")

	o.delay.Store(int64(300 * time.Millisecond))
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := map[string]int{}
	for i := range 200 {
		r := rs[i%3]
		wg.Go(func() {
			got, err := r.fetch("/cold")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				bodies[err.Error()]++
				return
			}
			bodies[got.Body]++
		})
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"/cold v1": 200}, bodies)
	assert.Equal(t, 1, o.count("/cold"), "one origin fill for the whole cluster")
	o.delay.Store(0)

	d := startReplica(t, clusterEnv(o.URL, rsrv.URL(), "t", "d"), true)
	for _, path := range []string{"/stored", "/cold"} {
		got := d.get(path)
		assert.Equal(t, path+" v1", got.Body)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "%s warmed from Redis", path)
		assert.Equal(t, 1, o.count(path))
	}
	assert.GreaterOrEqual(t, d.metric(`isrproxy_cluster_pages_received_total{via="warm"}`), 2.0)
}

// A replica cut off from Redis keeps serving what it holds; when it is
// back it applies every revalidation it missed before it reports ready,
// and when the stream no longer reaches back that far it marks every
// page it holds stale.
func TestClusterReplicaCutOffCatchesUp(t *testing.T) {
	o := newCountingOrigin(t)
	rsrv, rs := startCluster(t, o, 2)
	a := rs[0]
	link := newCutter(t, rsrv.Addr)
	c := startReplica(t, clusterEnv(o.URL, link.URL(), "t", "c"), true)
	waitReplicas(t, []*replica{a, c}, 3)
	for _, path := range []string{"/x", "/y"} {
		a.get(path)
		c.get(path)
	}

	link.cut()
	require.Eventually(t, func() bool { return c.metric("isrproxy_cluster_up") == 0 }, 10*time.Second, 20*time.Millisecond)
	code, body := c.readyzBody()
	assert.Equal(t, http.StatusOK, code, "a replica cut off keeps serving")
	assert.Contains(t, body, "degraded")
	waitReplicas(t, rs, 2)
	o.version.Store(2)
	status, ans := a.revalidate("path=/x")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	got := c.get("/x")
	assert.Equal(t, "/x v1", got.Body, "cut off: what it holds")
	assert.Equal(t, "HIT", got.Header.Get("X-Cache"))

	link.restore()
	require.Eventually(t, func() bool {
		code, body := c.readyzBody()
		return code == http.StatusOK && strings.Contains(body, "in sync")
	},
		10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "/x v2", c.get("/x").Body, "caught up before ready")
	assert.Equal(t, 2, o.count("/x"), "from Redis, not the origin")
	waitReplicas(t, append(rs, c), 3)

	// Cut off again, while the stream is trimmed past where c stopped.
	link.cut()
	require.Eventually(t, func() bool { return c.metric("isrproxy_cluster_up") == 0 }, 10*time.Second, 20*time.Millisecond)
	waitReplicas(t, rs, 2)
	o.version.Store(3)
	status, _ = a.revalidate("path=/y")
	require.Equal(t, http.StatusOK, status)
	ctx := context.Background()
	rc := rsrv.Client()
	require.NoError(t, rc.XTrimMaxLen(ctx, "t:log", 0).Err())
	require.NoError(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: "t:log", Values: []string{"op", "join", "from", "a"}}).Err())
	link.restore()
	require.Eventually(t, func() bool {
		code, body := c.readyzBody()
		return code == http.StatusOK && strings.Contains(body, "in sync")
	},
		10*time.Second, 20*time.Millisecond)
	got = c.get("/y")
	assert.Equal(t, "STALE", got.Header.Get("X-Cache"), "marked stale: the revalidations it missed are lost")
	require.Eventually(t, func() bool {
		got, err := c.fetch("/y")
		return err == nil && got.Body == "/y v3"
	}, 10*time.Second, 20*time.Millisecond)
}

// Redis slow (CLIENT PAUSE) or down: replicas keep serving from memory at
// full speed, fills go to the origin, a revalidation applies where it was
// received and says so in a 502; when Redis is back the cluster converges
// without a restart.
func TestClusterRedisDownOrSlow(t *testing.T) {
	o := newCountingOrigin(t)
	rsrv, rs := startCluster(t, o, 3)
	a, b := rs[0], rs[1]
	for _, r := range rs {
		r.get("/s")
	}
	rc := rsrv.Client()
	ctx := context.Background()

	// Slow: every call waits.
	require.NoError(t, rc.Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err())
	hitsAreFast(t, rs, "/s")
	o.version.Store(2)
	status, ans := a.revalidate("path=/s")
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Equal(t, "cluster unreachable: applied on a only", ans.Message)
	assert.Equal(t, "/s v2", a.get("/s").Body)
	require.Eventually(t, func() bool {
		got, err := b.fetch("/s")
		return err == nil && got.Body == "/s v2"
	}, 15*time.Second, 50*time.Millisecond, "converges when Redis answers again")

	// Down.
	port := rsrv.Port()
	rsrv.Stop()
	hitsAreFast(t, rs, "/s")
	got := b.get("/fresh")
	assert.Equal(t, "/fresh v2", got.Body, "a fill goes to the origin")
	o.version.Store(3)
	status, ans = b.revalidate("path=/s")
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Equal(t, "cluster unreachable: applied on b only", ans.Message)
	assert.Equal(t, "/s v3", b.get("/s").Body)
	assert.Equal(t, 0.0, b.metric("isrproxy_cluster_up"))

	redistest.StartOn(t, port)
	for _, r := range rs {
		require.Eventually(t, func() bool {
			got, err := r.fetch("/s")
			return err == nil && got.Body == "/s v3"
		}, 20*time.Second, 50*time.Millisecond, "replica %s converges on the newest page", r.node)
	}
}

// hitsAreFast asserts that stored pages are answered within a few
// milliseconds on every replica: no hit waits on Redis.
func hitsAreFast(t *testing.T, rs []*replica, path string) {
	t.Helper()
	for _, r := range rs {
		for range 20 {
			start := time.Now()
			got := r.get(path)
			took := time.Since(start)
			assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "replica %s", r.node)
			assert.Less(t, took, 150*time.Millisecond, "replica %s: a hit never waits on Redis", r.node)
		}
	}
}

// Bad input: a malformed REDIS_URL stops isrproxy (exit 2, named, its value
// not shown); a Redis unreachable at start does not: the replica serves
// alone and says so in its log, /readyz and /metrics.
func TestClusterBadInput(t *testing.T) {
	env := exitValidEnviron()
	env["REDIS_URL"] = "redis://:hunter2@127.0.0.1:notaport/0"
	code, _, stderr := exitCLI(t, env)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "REDIS_URL")
	assert.NotContains(t, stderr, "hunter2")

	if testing.Short() {
		t.Skip("starts a replica")
	}
	o := newCountingOrigin(t)
	env = clusterEnv(o.URL, "redis://127.0.0.1:1", "t", "lonely")
	r := startReplica(t, env, true)
	code, body := r.readyzBody()
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "degraded")
	assert.Equal(t, 0.0, r.metric("isrproxy_cluster_up"))
	assert.Contains(t, r.logs.String(), "cluster unreachable at start")
	assert.Equal(t, "/a v1", r.get("/a").Body)
	assert.Equal(t, "HIT", r.get("/a").Header.Get("X-Cache"))
	status, ans := r.revalidate("path=/a")
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Equal(t, "cluster unreachable: applied on lonely only", ans.Message)
	assert.True(t, slices.Contains(ans.Results[0].Replicas, "lonely"))
	assert.False(t, strings.Contains(r.logs.String(), "panic"))
}

// A revalidation refetches every variant any replica holds, not only
// those of the replica called: here the https page only b has.
func TestClusterRevalidationReachesVariantsOnlyPeersHold(t *testing.T) {
	o := newCountingOrigin(t)
	_, rs := startClusterEnv(t, o, 2, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	a, b := rs[0], rs[1]
	https := []string{"X-Forwarded-Proto", "https"}
	assert.Equal(t, "/v v1", b.get("/v", https...).Body)
	o.version.Store(2)
	status, ans := a.revalidate("path=/v")
	require.Equal(t, http.StatusOK, status, "%+v", ans)
	got := b.get("/v", https...)
	assert.Equal(t, "/v v2", got.Body)
	assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
}
