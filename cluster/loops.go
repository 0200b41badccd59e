package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// heartbeatLoop records this replica as live, learns the live set, and
// notices when Redis answers again after a failure. first is closed after
// the first attempt.
func (c *Cluster) heartbeatLoop(first chan struct{}) {
	tick := time.NewTicker(c.opts.Heartbeat)
	defer tick.Stop()
	for {
		c.heartbeat()
		if first != nil {
			close(first)
			first = nil
		}
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Cluster) heartbeat() {
	ctx, cancel := c.op(c.ctx)
	defer cancel()
	e, err := epochScript.Run(ctx, c.rdb, []string{c.key("epoch")}).Text()
	if err != nil {
		c.failed("heartbeat", err)
		return
	}
	epoch, err := strconv.ParseUint(e, 10, 32)
	if err != nil {
		c.ignored("epoch is not a number", c.key("epoch"))
		return
	}
	// A replica counts as live once it has first read the stream to its
	// end: revalidations do not wait for one still joining, which gets
	// their pages from the second level anyway.
	me := ""
	if c.joined.Load() {
		me = c.opts.Node
	}
	live, err := heartbeatScript.Run(ctx, c.rdb, []string{c.key("nodes")}, me,
		c.opts.LiveWindow.Milliseconds()).StringSlice()
	if err != nil {
		c.failed("heartbeat", err)
		return
	}
	c.live.Store(&live)
	if old := c.epoch.Swap(epoch); old != 0 && old != epoch {
		// Redis lost its data: whatever the stream held is gone.
		c.log.Warn("cluster: Redis lost its data (a new epoch); every stored page is marked stale")
		c.resync.Store(true)
		c.synced.Store(false)
	}
	if c.up.CompareAndSwap(false, true) {
		if at := c.downAt.Load(); at != 0 {
			c.log.Info("cluster reachable again: catching up", "after", time.Since(time.Unix(0, at)).Round(time.Millisecond).String())
		} else {
			c.log.Info("cluster joined", "redis", c.redacted(), "replicas", len(live))
		}
		c.resync.Store(true)
	}
}

// readLoop applies the revalidations peers record in the stream. Before
// its first read, and after each time Redis failed, it syncs: it finds
// where to read on from (and marks every page stale when the stream no
// longer reaches back there), warms the store on the first sync, and
// reads to the end of the stream before the replica reports ready.
func (c *Cluster) readLoop() {
	lastID := ""
	first := true
	for c.ctx.Err() == nil {
		if !c.up.Load() {
			sleep(c.ctx, 50*time.Millisecond)
			continue
		}
		if c.resync.Swap(false) || first {
			id, err := c.sync(lastID, first)
			if err != nil {
				c.failed("sync", err)
				continue
			}
			lastID, first = id, false
			id, err = c.drain(lastID)
			if err != nil {
				c.failed("catch-up", err)
				continue
			}
			lastID = id
			if !c.resync.Load() {
				c.synced.Store(true)
				c.joined.Store(true)
				c.replay()
			}
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, time.Second+c.opts.OpTimeout)
		streams, err := c.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{c.key("log"), lastID}, Count: 256, Block: time.Second,
		}).Result()
		cancel()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			c.failed("read", err)
			continue
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				c.apply(m)
				lastID = m.ID
			}
		}
	}
}

// sync returns the stream position to read on from. On the first sync
// (lastID "") the pages loaded before (if any) are checked against
// Options.ResumeID, and the store is warmed from the second level.
func (c *Cluster) sync(lastID string, first bool) (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 4*c.opts.OpTimeout)
	defer cancel()
	stream := c.key("log")
	from := lastID
	if first {
		from = c.opts.ResumeID
	}
	if from != "" {
		got, err := c.rdb.XRange(ctx, stream, from, from).Result()
		if err != nil {
			return "", err
		}
		if len(got) == 1 {
			return from, nil // nothing after it was trimmed
		}
	}
	// The stream does not reach back: start at its end.
	end, err := c.streamEnd(ctx)
	if err != nil {
		return "", err
	}
	if n := c.app.MarkAllStale(); n > 0 {
		c.log.Warn("cluster: the revalidations missed are no longer all recorded; every stored page is marked stale", "keys", n)
	}
	if first {
		if err := c.warm(); err != nil {
			return "", err
		}
	}
	return end, nil
}

// streamEnd returns the ID of the stream's last entry, adding one when the
// stream is empty: a position that later syncs can find again.
func (c *Cluster) streamEnd(ctx context.Context) (string, error) {
	stream := c.key("log")
	last, err := c.rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(last) == 1 {
		return last[0].ID, nil
	}
	return c.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: stream, MaxLen: c.opts.MaxLen, Approx: true,
		Values: []string{"op", "join", "from", c.opts.Node},
	}).Result()
}

// drain applies every entry after lastID, without blocking.
func (c *Cluster) drain(lastID string) (string, error) {
	for c.ctx.Err() == nil {
		ctx, cancel := c.op(c.ctx)
		got, err := c.rdb.XRangeN(ctx, c.key("log"), "("+lastID, "+", 512).Result()
		cancel()
		if err != nil {
			return lastID, err
		}
		for _, m := range got {
			c.apply(m)
			lastID = m.ID
		}
		if len(got) < 512 {
			break
		}
	}
	return lastID, nil
}

// warm stores every page of the second level.
func (c *Cluster) warm() error {
	start := time.Now()
	var cursor uint64
	pages := 0
	for c.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(c.ctx, 4*c.opts.OpTimeout)
		keys, next, err := c.rdb.Scan(ctx, cursor, c.key("page", "*"), 256).Result()
		if err != nil {
			cancel()
			return err
		}
		pipe := c.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HGetAll(ctx, k)
		}
		if len(keys) > 0 {
			pipe.Exec(ctx) // each command's error is read below
		}
		cancel()
		for i, cmd := range cmds {
			var reply redis.Error
			if err := cmd.Err(); errors.As(err, &reply) {
				c.ignored("not a page hash: "+reply.Error(), keys[i]) // a foreign key under the prefix
				continue
			} else if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			for _, p := range c.decodeAll("", cmd.Val()) {
				c.app.ApplyPage(p)
				c.m.received.WithLabelValues("warm").Inc()
				pages++
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	if pages > 0 {
		c.log.Info("cluster: warmed from Redis", "pages", pages, "took", time.Since(start).Round(time.Millisecond).String())
	}
	return nil
}

// apply takes in one stream entry from a peer and confirms it.
func (c *Cluster) apply(m redis.XMessage) {
	field := func(name string) string { s, _ := m.Values[name].(string); return s }
	from := field("from")
	if from == c.opts.Node {
		return
	}
	op := revalidation.Mode(field("op"))
	if op == "join" {
		return
	}
	gen, err := strconv.ParseUint(field("gen"), 10, 64)
	keyString := field("key")
	if err != nil || keyString == "" || !strings.Contains(keyString, "/") || from == "" {
		c.ignored("stream entry "+m.ID, keyString)
		return
	}
	key := cache.ParseKey(keyString)
	switch op {
	case revalidation.Refetch:
		vid := field("vid")
		ctx, cancel := c.op(c.ctx)
		blob, err := c.rdb.HGet(ctx, c.pagesKey(key), "p:"+vid).Bytes()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			// Dropped since by a later purge, which the stream holds too.
		case err != nil:
			c.failed("apply", err)
			return
		default:
			p, err := decodePage(blob, keyString)
			if err != nil || p.VariantID() != vid {
				c.ignored("page blob of stream entry "+m.ID, keyString)
				return // not confirmed: the caller names this replica
			}
			if held := c.app.ApplyPage(p); held < gen {
				c.log.Warn("cluster: a page older than its stream entry", "key", keyString)
				return
			}
			c.m.received.WithLabelValues("stream").Inc()
		}
	case revalidation.Purge, revalidation.Soft:
		c.app.ApplyMode(key, op)
	default:
		c.ignored("stream entry "+m.ID+" of unknown kind", keyString)
		return
	}
	if rid := field("rid"); rid != "" {
		ctx, cancel := c.op(c.ctx)
		pipe := c.rdb.Pipeline()
		pipe.RPush(ctx, c.inbox(from), rid+" "+c.opts.Node)
		pipe.Expire(ctx, c.inbox(from), time.Minute)
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil {
			c.failed("confirm", err)
		}
	}
}

// inboxLoop hands the confirmations peers send to the revalidations
// waiting for them.
func (c *Cluster) inboxLoop() {
	for c.ctx.Err() == nil {
		if !c.up.Load() {
			sleep(c.ctx, 50*time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, time.Second+c.opts.OpTimeout)
		got, err := c.rdb.BLPop(ctx, time.Second, c.inbox(c.opts.Node)).Result()
		cancel()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			c.failed("inbox", err)
			continue
		}
		if len(got) == 2 {
			if rid, node, ok := strings.Cut(got[1], " "); ok {
				c.confirmed(rid, node)
			}
		}
	}
}

// replay runs, for the whole cluster, the revalidations applied here alone
// while Redis was unreachable.
func (c *Cluster) replay() {
	c.mu.Lock()
	pending := c.pending
	c.pending = make(map[cache.Key]revalidation.Mode)
	c.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	c.log.Info("cluster: replaying revalidations applied here alone", "keys", len(pending))
	c.wg.Go(func() {
		for key, mode := range pending {
			if c.ctx.Err() != nil {
				return
			}
			c.app.Replay(c.ctx, key, mode)
		}
	})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
