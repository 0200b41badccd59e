package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/internal/redistest"
	"github.com/isrproxy/isrproxy/revalidation"
)

func testPage(key cache.Key, gen uint64, body string) *cache.Page {
	return &cache.Page{
		Key: key, Status: 200, Header: cache.Fields{{Name: "Content-Type", Values: []string{"text/plain"}}},
		Body: []byte(body), Gen: gen, StoredAt: time.Unix(1700000000, 0),
	}
}

// A blob that is cut short, altered or of another key is refused whole:
// no replica ever stores a partial page.
func TestCodecRefusesPartialOrAlteredBlobs(t *testing.T) {
	key := cache.Key{Host: "example.com", Path: "/a"}
	sent := testPage(key, 7, "hello world")
	sent.Links = cache.NewLinks([]string{"/b", "/c?x=1"})
	blob, err := encodePage(sent)
	require.NoError(t, err)
	p, err := decodePage(blob, key.String())
	require.NoError(t, err)
	assert.Equal(t, "hello world", string(p.Body))
	assert.Equal(t, sent.Links, p.Links, "links travel with the page: linked=1 works on every replica")
	assert.Equal(t, uint64(7), p.Gen)
	assert.Equal(t, key, p.Key)

	for i := range len(blob) {
		_, err := decodePage(blob[:i], key.String())
		assert.ErrorIs(t, err, errCorrupt, "cut at %d", i)
	}
	altered := append([]byte(nil), blob...)
	altered[len(altered)-8] ^= 1
	_, err = decodePage(altered, key.String())
	assert.ErrorIs(t, err, errCorrupt)
	_, err = decodePage(blob, "example.com/b")
	assert.ErrorIs(t, err, errCorrupt)
}

// fakeApp records what the cluster applies.
type fakeApp struct {
	mu    sync.Mutex
	pages map[string]*cache.Page
	modes []revalidation.Mode
	stale int
}

func (f *fakeApp) ApplyPage(p *cache.Page) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pages == nil {
		f.pages = map[string]*cache.Page{}
	}
	if cur := f.pages[p.Key.String()]; cur == nil || cur.Gen <= p.Gen {
		f.pages[p.Key.String()] = p
	}
	return f.pages[p.Key.String()].Gen
}
func (f *fakeApp) ApplyMode(_ cache.Key, m revalidation.Mode) {
	f.mu.Lock()
	f.modes = append(f.modes, m)
	f.mu.Unlock()
}
func (f *fakeApp) HeldGen(cache.Key) uint64                             { return 0 }
func (f *fakeApp) MarkAllStale() int                                    { f.stale++; return 0 }
func (f *fakeApp) Replay(context.Context, cache.Key, revalidation.Mode) {}
func (f *fakeApp) page(key string) *cache.Page                          { f.mu.Lock(); defer f.mu.Unlock(); return f.pages[key] }

func newTestCluster(t *testing.T, url, node string, reg prometheus.Registerer) *Cluster {
	c, err := New(Options{URL: url, Name: "t", Node: node, Registerer: reg, Heartbeat: 100 * time.Millisecond})
	require.NoError(t, err)
	return c
}

// Generations grow per key, lead with the epoch, and never fall at or
// below the one a replica holds (a counter that went backwards).
func TestGenerationsAreOrderedAndNeverBelowHeld(t *testing.T) {
	rs := redistest.Start(t)
	c := newTestCluster(t, rs.URL(), "a", nil)
	c.Start(&fakeApp{})
	defer c.Close()
	ctx := context.Background()
	key := cache.Key{Host: "example.com", Path: "/g"}
	g1, err := c.Gen(ctx, key, 0)
	require.NoError(t, err)
	g2, err := c.Gen(ctx, key, 0)
	require.NoError(t, err)
	assert.Greater(t, g2, g1)
	assert.Equal(t, c.epoch.Load(), g1>>32)
	g3, err := c.Gen(ctx, key, g2+100)
	require.NoError(t, err)
	assert.Greater(t, g3, g2+100, "above what is held")
	assert.Greater(t, c.LocalGen(g3), g3)
}

// The second level keeps the newer page, a purge's floor refuses older
// fills, and a fill lock is held by one replica and released by its
// holder only.
func TestSecondLevelKeepsNewerAndLockIsExclusive(t *testing.T) {
	rs := redistest.Start(t)
	a := newTestCluster(t, rs.URL(), "a", nil)
	a.Start(&fakeApp{})
	defer a.Close()
	ctx := context.Background()
	key := cache.Key{Host: "example.com", Path: "/s"}
	require.NoError(t, a.Save(ctx, testPage(key, 10, "ten")))
	require.NoError(t, a.Save(ctx, testPage(key, 9, "nine")))
	pages, err := a.Load(ctx, key)
	require.NoError(t, err)
	require.Len(t, pages, 1)
	assert.Equal(t, "ten", string(pages[0].Body))

	_, _, err = a.Publish(ctx, revalidation.Purge, key, nil, 20, false)
	require.NoError(t, err)
	pages, _ = a.Load(ctx, key)
	assert.Empty(t, pages, "purged")
	require.NoError(t, a.Save(ctx, testPage(key, 15, "fifteen")))
	pages, _ = a.Load(ctx, key)
	assert.Empty(t, pages, "a fill older than the purge is refused")
	require.NoError(t, a.Save(ctx, testPage(key, 21, "twenty-one")))
	pages, _ = a.Load(ctx, key)
	require.Len(t, pages, 1)

	release, got, err := a.Lock(ctx, key, false)
	require.NoError(t, err)
	require.True(t, got)
	_, again, err := a.Lock(ctx, key, false)
	require.NoError(t, err)
	assert.False(t, again, "one holder at a time")
	rc := rs.Client()
	require.NoError(t, rc.Set(ctx, a.lockKey(key, false), "someone else", time.Minute).Err())
	release()
	assert.Equal(t, int64(1), rc.Exists(ctx, a.lockKey(key, false)).Val(), "only the holder's token is released")
}

// Foreign or corrupt data under CLUSTER_NAME is ignored and logged: a page
// hash of another key, a corrupt blob, stream entries of unknown shape;
// the good page beside them is still taken in.
func TestForeignOrCorruptDataIsIgnored(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	ctx := context.Background()
	good := cache.Key{Host: "example.com", Path: "/good"}
	bad := cache.Key{Host: "example.com", Path: "/bad"}
	blob, err := encodePage(testPage(good, 1<<40, "good"))
	require.NoError(t, err)
	require.NoError(t, rc.HSet(ctx, "t:page:"+digest(good), "k", good.String(), "g:", genString(1<<40), "p:", blob).Err())
	require.NoError(t, rc.HSet(ctx, "t:page:"+digest(bad), "k", bad.String(), "p:", "garbage").Err())
	require.NoError(t, rc.HSet(ctx, "t:page:{foreign}", "x", "y").Err())
	require.NoError(t, rc.Set(ctx, "t:page:{string}", "not a hash", 0).Err())

	app := &fakeApp{}
	reg := prometheus.NewRegistry()
	c := newTestCluster(t, rs.URL(), "a", reg)
	c.Start(app)
	defer c.Close()
	require.Eventually(t, func() bool { ok, _ := c.Ready(); return ok }, 5*time.Second, 10*time.Millisecond)
	require.NotNil(t, app.page(good.String()), "the good page warms the store")
	assert.Nil(t, app.page(bad.String()))

	for _, values := range [][]string{
		{"op", "refetch", "key", "no-slash", "gen", "1", "from", "b"},
		{"op", "refetch", "key", bad.String(), "vid", "", "gen", "2", "from", "b", "rid", "r1"},
		{"op", "explode", "key", good.String(), "gen", "3", "from", "b"},
		{"junk", "1"},
	} {
		require.NoError(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: "t:log", Values: values}).Err())
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(c.m.ignored) >= 5 }, 5*time.Second, 10*time.Millisecond)
	assert.Empty(t, app.modes)
	assert.Equal(t, int64(0), rc.LLen(ctx, "t:inbox:b").Val(), "a corrupt page is never confirmed")
	assert.True(t, c.Up())
}

// A key of another type under the prefix is not an outage: the replica
// stays linked and ignores it.
func TestForeignKeyTypeIsNotAnOutage(t *testing.T) {
	rs := redistest.Start(t)
	rc := rs.Client()
	ctx := context.Background()
	key := cache.Key{Host: "example.com", Path: "/w"}
	require.NoError(t, rc.Set(ctx, "t:page:"+digest(key), "a string", 0).Err())
	c := newTestCluster(t, rs.URL(), "a", nil)
	c.Start(&fakeApp{})
	defer c.Close()
	_, err := c.Load(ctx, key)
	assert.Error(t, err)
	assert.True(t, c.Up(), "Redis answered")
}
