// Package cluster lets several isrproxy replicas behind one load balancer
// act as one cache, with a Redis (or Valkey) server as the only part they
// share: replicas never talk to each other. Through Redis they
//
//   - take cluster-wide generations (a counter per key), so that an older
//     fetch never replaces a newer page on any replica;
//   - keep a second level of pages (a hash per key holding each variant's
//     blob, compressed as stored, with its generation): a miss reads it
//     before the origin, one fill per key runs for the whole cluster under
//     a lease lock, and a replica that starts empty warms from it;
//   - record every revalidation in a stream that each replica reads from
//     its last position, applying what peers did and confirming it in the
//     caller's inbox list, so that the revalidate API answers 200 only when
//     every live replica (heartbeat in a sorted set) holds the new version.
//
// Redis down or slow never stops a replica: hits never touch Redis, and
// every call has a short deadline after which the replica works alone
// (docs/cluster.md) until Redis answers again, when it catches up.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// ErrUnreachable is returned by every call while Redis does not answer.
var ErrUnreachable = errors.New("cluster unreachable")

// Applier is what the cluster asks of the replica's page handler: to take
// in what peers did. proxy.Handler implements it.
type Applier interface {
	// ApplyPage stores p unless a newer generation of its variant is
	// held, and returns the generation held for that variant after.
	ApplyPage(p *cache.Page) (held uint64)
	// ApplyMode applies a peer's purge or soft revalidation of key.
	ApplyMode(key cache.Key, mode revalidation.Mode)
	// HeldGen is the highest generation held among key's variants; 0: none.
	HeldGen(key cache.Key) uint64
	// MarkAllStale marks every stored page stale and returns how many keys.
	MarkAllStale() int
	// Replay runs a revalidation again for the whole cluster: one this
	// replica applied alone while Redis was unreachable.
	Replay(ctx context.Context, key cache.Key, mode revalidation.Mode)
}

// Options configures a Cluster. URL, Name and Node are required.
type Options struct {
	// URL is REDIS_URL, already validated.
	URL string
	// Name is CLUSTER_NAME, the prefix of every Redis key.
	Name string
	// Node is NODE_ID, this replica's name.
	Node string
	// Logger gets notices. Nil: discard.
	Logger *slog.Logger
	// Registerer gets the cluster's metrics. Nil: none.
	Registerer prometheus.Registerer
	// LockLease bounds how long one replica's fill holds a key's lock
	// (ORIGIN_TIMEOUT plus a margin). Zero: 32s.
	LockLease time.Duration
	// ResumeID is the stream position of pages the replica loaded before
	// Start (a snapshot): revalidations after it are applied, and when the
	// stream no longer reaches back to it every page is marked stale.
	// Empty: pages already stored are marked stale.
	ResumeID string

	// Timings; zero values are the defaults in brackets.
	OpTimeout   time.Duration // one Redis call [500ms]
	Heartbeat   time.Duration // between heartbeats [1s]
	LiveWindow  time.Duration // a replica is live when seen within it [4s]
	ConfirmWait time.Duration // how long a revalidation waits for confirmations [3s]
	MaxLen      int64         // revalidations kept in the stream, about [10000]
}

// Cluster is one replica's link to the others. Build it with New, Start it
// once the page handler exists, and Close it on shutdown.
type Cluster struct {
	opts Options
	rdb  *redis.Client
	log  *slog.Logger
	m    *clusterMetrics
	app  Applier

	epoch   atomic.Uint64
	up      atomic.Bool // the last Redis call succeeded
	synced  atomic.Bool // the stream has been read to its end since the last (re)connect
	joined  atomic.Bool // the first sync is done
	started atomic.Bool // Start has run its first connection attempt
	resync  atomic.Bool // the reader must check for a gap before reading on
	downAt  atomic.Int64
	live    atomic.Pointer[[]string]

	mu      sync.Mutex // guards waiters and pending
	waiters map[string]*waiter
	pending map[cache.Key]revalidation.Mode

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a Cluster; it does not reach Redis until Start.
func New(opts Options) (*Cluster, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: REDIS_URL: %w", err)
	}
	if opts.Name == "" || opts.Node == "" {
		return nil, errors.New("cluster: Name and Node are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.OpTimeout, 500*time.Millisecond)
	def(&opts.Heartbeat, time.Second)
	def(&opts.LiveWindow, 4*time.Second)
	def(&opts.ConfirmWait, 3*time.Second)
	def(&opts.LockLease, 32*time.Second)
	if opts.MaxLen <= 0 {
		opts.MaxLen = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Deadlines bound every call on the socket too; a call is tried once
	// more at most (what it does is idempotent or deduplicated by
	// generation); the pool is large enough for the blocking readers and
	// the revalidation workers.
	ropts.ContextTimeoutEnabled = true
	ropts.MaxRetries = 1
	ropts.DialTimeout = time.Second
	ropts.ReadTimeout = 3 * time.Second
	ropts.WriteTimeout = time.Second
	ropts.PoolTimeout = time.Second
	ropts.PoolSize = max(ropts.PoolSize, 64)
	c := &Cluster{
		opts:    opts,
		rdb:     redis.NewClient(ropts),
		log:     opts.Logger.With("node", opts.Node),
		waiters: make(map[string]*waiter),
		pending: make(map[cache.Key]revalidation.Mode),
	}
	c.m = newMetrics(opts.Registerer, c)
	c.rdb.AddHook(c.m)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Node is this replica's name.
func (c *Cluster) Node() string { return c.opts.Node }

// Start links the replica to the cluster: its heartbeat, the stream
// reader (which first warms the store from Redis) and the confirmation
// inbox run until Close. It waits at most a few seconds for the first
// contact with Redis; when there is none the replica starts alone
// (degraded) and links up as soon as Redis answers.
func (c *Cluster) Start(app Applier) {
	c.app = app
	first := make(chan struct{})
	c.wg.Go(func() { c.heartbeatLoop(first) })
	select {
	case <-first:
	case <-time.After(3 * time.Second):
	}
	c.started.Store(true)
	if !c.up.Load() {
		c.log.Warn("cluster unreachable at start: serving alone (degraded) until Redis answers",
			"redis", c.redacted())
	}
	c.wg.Go(c.readLoop)
	c.wg.Go(c.inboxLoop)
}

// Close leaves the cluster (this replica stops counting as live at once)
// and stops its loops.
func (c *Cluster) Close() {
	c.cancel()
	c.wg.Wait()
	if c.up.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.OpTimeout)
		c.rdb.ZRem(ctx, c.key("nodes"), c.opts.Node)
		cancel()
	}
	c.rdb.Close()
}

// Ready reports whether the replica may take visitors: it has read every
// revalidation it missed (or Redis is unreachable, and it serves alone),
// with a word on its state for /readyz.
func (c *Cluster) Ready() (bool, string) {
	switch {
	case !c.started.Load():
		return false, "cluster: connecting"
	case !c.up.Load():
		return true, "cluster unreachable: serving from memory alone (degraded)"
	case !c.synced.Load():
		return false, "cluster: catching up on revalidations"
	}
	return true, "cluster: in sync"
}

// Up reports whether Redis answered the last call.
func (c *Cluster) Up() bool { return c.up.Load() }

// Live returns the replicas seen at the last heartbeat.
func (c *Cluster) Live() []string {
	if l := c.live.Load(); l != nil {
		return *l
	}
	return nil
}

func (c *Cluster) redacted() string {
	o, err := redis.ParseURL(c.opts.URL)
	if err != nil {
		return ""
	}
	return o.Addr
}

// Key names, all under CLUSTER_NAME. The keys of one page share the hash
// tag of its key's digest.
func (c *Cluster) key(parts ...string) string {
	return c.opts.Name + ":" + strings.Join(parts, ":")
}

func digest(key cache.Key) string {
	sum := sha256.Sum256([]byte(key.String()))
	return "{" + hex.EncodeToString(sum[:12]) + "}"
}

func (c *Cluster) pagesKey(key cache.Key) string { return c.key("page", digest(key)) }
func (c *Cluster) genKey(key cache.Key) string   { return c.key("gen", digest(key)) }
func (c *Cluster) lockKey(key cache.Key, https bool) string {
	scheme := "http"
	if https {
		scheme = "https"
	}
	return c.key("lock", digest(key), scheme)
}
func (c *Cluster) inbox(node string) string { return c.key("inbox", node) }

// genString is a generation as Lua compares it: 20 digits.
func genString(g uint64) string { return fmt.Sprintf("%020d", g) }

// op gives a call its deadline.
func (c *Cluster) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.OpTimeout)
}

// failed notes a failed call: the replica works alone until the next
// heartbeat reaches Redis.
func (c *Cluster) failed(what string, err error) {
	if err == nil || errors.Is(err, redis.Nil) || c.ctx.Err() != nil {
		return
	}
	var reply redis.Error
	if errors.As(err, &reply) && !unavailable(reply.Error()) {
		// Redis answered: the data it was asked about is not ours.
		c.ignored(what+": "+reply.Error(), "")
		return
	}
	if c.up.CompareAndSwap(true, false) {
		c.downAt.Store(time.Now().UnixNano())
		c.log.Warn("cluster unreachable: serving alone until Redis answers", "during", what, "err", err)
	}
	c.resync.Store(true)
	c.synced.Store(false)
}

// unavailable reports a Redis error reply that means "not now" rather than
// "not that": loading, busy with a script, a replica without a master.
func unavailable(reply string) bool {
	for _, p := range []string{"LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "NOAUTH", "WRONGPASS", "NOPERM"} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

// Gen returns a cluster-wide generation for a fetch of key that starts
// now; held is the highest generation the replica holds for key. The
// generation leads with the cluster's epoch.
func (c *Cluster) Gen(ctx context.Context, key cache.Key, held uint64) (uint64, error) {
	if !c.up.Load() {
		return 0, ErrUnreachable
	}
	e := c.epoch.Load()
	floor := uint64(0)
	if held>>32 == e {
		floor = held & 0xffffffff
	}
	ctx, cancel := c.op(ctx)
	defer cancel()
	n, err := genScript.Run(ctx, c.rdb, []string{c.genKey(key)}, floor).Uint64()
	if err != nil {
		c.failed("gen", err)
		return 0, ErrUnreachable
	}
	return e<<32 | (n & 0xffffffff), nil
}

// LocalGen is the generation of a fetch made while Redis is unreachable:
// just above held, or the lowest of the epoch for a key not held, so that
// any fetch the cluster orders later is newer.
func (c *Cluster) LocalGen(held uint64) uint64 {
	if held == 0 {
		return c.epoch.Load() << 32
	}
	return held + 1
}

// Load returns the variants of key that Redis holds (the second level).
func (c *Cluster) Load(ctx context.Context, key cache.Key) ([]*cache.Page, error) {
	pages, err := c.held(ctx, key, "load")
	if len(pages) > 0 {
		c.m.received.WithLabelValues("miss").Inc()
	}
	return pages, err
}

// Variants is Load for a revalidation: which variants the cluster holds
// (not counted as pages received).
func (c *Cluster) Variants(ctx context.Context, key cache.Key) ([]*cache.Page, error) {
	return c.held(ctx, key, "variants")
}

// held reads the variants of key from Redis; op names the call in errors.
func (c *Cluster) held(ctx context.Context, key cache.Key, op string) ([]*cache.Page, error) {
	if !c.up.Load() {
		return nil, ErrUnreachable
	}
	ctx, cancel := c.op(ctx)
	defer cancel()
	all, err := c.rdb.HGetAll(ctx, c.pagesKey(key)).Result()
	if err != nil {
		c.failed(op, err)
		return nil, ErrUnreachable
	}
	return c.decodeAll(key.String(), all), nil
}

// decodeAll decodes the variants of a page hash; want, when not "", is the
// key it must hold. Foreign or corrupt fields are logged and skipped.
func (c *Cluster) decodeAll(want string, all map[string]string) []*cache.Page {
	if len(all) == 0 {
		return nil
	}
	if k, ok := all["k"]; !ok || (want != "" && k != want) {
		c.ignored("page hash of another key or not ours", want)
		return nil
	} else if want == "" {
		want = k
	}
	var pages []*cache.Page
	for f, v := range all {
		vid, ok := strings.CutPrefix(f, "p:")
		if !ok {
			continue
		}
		p, err := decodePage([]byte(v), want)
		if err != nil || p.VariantID() != vid {
			c.ignored(fmt.Sprintf("page blob: %v", err), want)
			continue
		}
		pages = append(pages, p)
	}
	return pages
}

// ignored logs and counts foreign or corrupt data under CLUSTER_NAME.
func (c *Cluster) ignored(what, key string) {
	c.m.ignored.Inc()
	c.log.Warn("cluster: ignored foreign or corrupt data", "what", what, "key", key)
}

// Lock takes key's fill lock (per scheme) for the lease. got false: another
// replica fills it; release is then nil.
func (c *Cluster) Lock(ctx context.Context, key cache.Key, https bool) (release func(), got bool, err error) {
	if !c.up.Load() {
		return nil, false, ErrUnreachable
	}
	token := rand.Text()
	lk := c.lockKey(key, https)
	octx, cancel := c.op(ctx)
	defer cancel()
	ok, err := c.rdb.SetNX(octx, lk, token, c.opts.LockLease).Result()
	if err != nil {
		c.failed("lock", err)
		return nil, false, ErrUnreachable
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.OpTimeout)
		defer cancel()
		if err := unlockScript.Run(ctx, c.rdb, []string{lk}, token).Err(); err != nil {
			c.failed("unlock", err) // the lease ends it
		}
	}, true, nil
}

// Await waits, at most limit, for the replica holding key's fill lock to
// store a page that match accepts, and returns it; nil when the lock was
// released without one (the fill failed or was not storable), or Redis
// failed.
func (c *Cluster) Await(ctx context.Context, key cache.Key, https bool, match func(*cache.Page) bool, limit time.Duration) *cache.Page {
	deadline := time.Now().Add(limit)
	lk := c.lockKey(key, https)
	for delay := 5 * time.Millisecond; time.Now().Before(deadline) && c.up.Load(); delay = min(delay*2, 50*time.Millisecond) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		octx, cancel := c.op(ctx)
		n, err := c.rdb.Exists(octx, lk).Result()
		cancel()
		if err != nil {
			c.failed("await", err)
			return nil
		}
		if n == 0 {
			break
		}
	}
	pages, err := c.Load(ctx, key)
	if err != nil {
		return nil
	}
	for _, p := range pages {
		if match(p) {
			return p
		}
	}
	return nil
}

// Save stores p in the second level unless a newer version is there.
func (c *Cluster) Save(ctx context.Context, p *cache.Page) error {
	if !c.up.Load() {
		return ErrUnreachable
	}
	blob, err := encodePage(p)
	if err != nil {
		return err
	}
	ctx, cancel := c.op(ctx)
	defer cancel()
	n, err := saveScript.Run(ctx, c.rdb, []string{c.pagesKey(p.Key)}, p.Key.String(), p.VariantID(), genString(p.Gen), blob).Int()
	if err != nil {
		c.failed("save", err)
		return ErrUnreachable
	}
	if n < 0 {
		c.ignored("page hash of another key", p.Key.String())
	}
	return nil
}

// Publish makes a revalidation of key the cluster's: it stores page (a
// refetch's new version, ordered by its Gen) or the floor gen of a purge
// or soft revalidation in Redis, records it in the stream, and, when wait
// is true, waits for every other live replica to confirm it holds it.
// confirmed lists this replica first. While Redis is unreachable it
// returns ErrUnreachable and keeps the revalidation, to replay for the
// whole cluster once Redis answers again.
func (c *Cluster) Publish(ctx context.Context, mode revalidation.Mode, key cache.Key, page *cache.Page, gen uint64, wait bool) (confirmed, missing []string, err error) {
	confirmed = []string{c.opts.Node}
	missing, err = c.publish(ctx, mode, key, page, gen, wait, &confirmed)
	if err != nil {
		c.mu.Lock()
		c.pending[key] = mode
		c.mu.Unlock()
		return confirmed, nil, ErrUnreachable
	}
	return confirmed, missing, nil
}

func (c *Cluster) publish(ctx context.Context, mode revalidation.Mode, key cache.Key, page *cache.Page, gen uint64, wait bool, confirmed *[]string) (missing []string, err error) {
	if !c.up.Load() {
		return nil, ErrUnreachable
	}
	vid := ""
	if mode == revalidation.Refetch {
		if page == nil {
			return nil, errors.New("cluster: refetch without a page")
		}
		if err := c.Save(ctx, page); err != nil {
			return nil, err
		}
		gen, vid = page.Gen, page.VariantID()
	} else {
		octx, cancel := c.op(ctx)
		err := dropScript.Run(octx, c.rdb, []string{c.pagesKey(key)}, key.String(), genString(gen)).Err()
		cancel()
		if err != nil {
			c.failed("drop", err)
			return nil, ErrUnreachable
		}
	}
	rid := ""
	var w *waiter
	var expect []string
	if wait {
		for _, n := range c.Live() {
			if n != c.opts.Node {
				expect = append(expect, n)
			}
		}
		if len(expect) > 0 {
			rid = rand.Text()
			w = c.wait(rid)
			defer c.unwait(rid)
		}
	}
	octx, cancel := c.op(ctx)
	err = c.rdb.XAdd(octx, &redis.XAddArgs{
		Stream: c.key("log"), MaxLen: c.opts.MaxLen, Approx: true,
		Values: []string{"op", string(mode), "key", key.String(), "vid", vid,
			"gen", strconv.FormatUint(gen, 10), "from", c.opts.Node, "rid", rid},
	}).Err()
	cancel()
	if err != nil {
		c.failed("publish", err)
		return nil, ErrUnreachable
	}
	if w == nil {
		return nil, nil
	}
	got := w.until(ctx, expect, c.opts.ConfirmWait)
	for _, n := range expect {
		if got[n] {
			*confirmed = append(*confirmed, n)
		} else {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// waiter collects the confirmations of one revalidation.
type waiter struct {
	mu   sync.Mutex
	got  map[string]bool
	more chan struct{} // signalled on each confirmation
}

func (c *Cluster) wait(rid string) *waiter {
	w := &waiter{got: make(map[string]bool), more: make(chan struct{}, 1)}
	c.mu.Lock()
	c.waiters[rid] = w
	c.mu.Unlock()
	return w
}

func (c *Cluster) unwait(rid string) {
	c.mu.Lock()
	delete(c.waiters, rid)
	c.mu.Unlock()
}

func (c *Cluster) confirmed(rid, node string) {
	c.mu.Lock()
	w := c.waiters[rid]
	c.mu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	w.got[node] = true
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
}

// until waits for every node of expect to confirm, or limit, and returns
// those that did.
func (w *waiter) until(ctx context.Context, expect []string, limit time.Duration) map[string]bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		w.mu.Lock()
		all := true
		for _, n := range expect {
			all = all && w.got[n]
		}
		w.mu.Unlock()
		if all {
			break
		}
		select {
		case <-w.more:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		break
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	got := make(map[string]bool, len(w.got))
	for n := range w.got {
		got[n] = true
	}
	return got
}
