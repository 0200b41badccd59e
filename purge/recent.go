package purge

import (
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/revalidation"
)

// maxRecent bounds the keys whose last revalidation the status endpoint
// can tell: the oldest is forgotten first. An entry is a few hundred bytes.
const maxRecent = 10_000

// lastRevalidation is the last revalidation of one key, as the status
// endpoint shows it.
type lastRevalidation struct {
	At      time.Time            `json:"-"`
	AtText  string               `json:"at"` // RFC 3339, UTC
	Mode    revalidation.Mode    `json:"mode"`
	Outcome revalidation.Outcome `json:"outcome"`
	Status  int                  `json:"status,omitempty"`
	Error   string               `json:"error,omitempty"`
}

// recent remembers the last revalidation of the last maxRecent keys
// revalidated, in a ring: a key revalidated again moves to the front.
type recent struct {
	mu    sync.Mutex // guards the fields below
	byKey map[string]recentEntry
	ring  []string // keys by insertion; a slot whose key moved on is stale
	next  int      // the slot written next
}

type recentEntry struct {
	last lastRevalidation
	slot int
}

func newRecent(n int) *recent {
	return &recent{byKey: make(map[string]recentEntry), ring: make([]string, n)}
}

// note records the results of one key (every variant of it): failed when
// any variant failed, otherwise the first variant's outcome.
func (rc *recent) note(key string, mode revalidation.Mode, results []Result, now time.Time) {
	if len(results) == 0 {
		return
	}
	last := lastRevalidation{At: now, AtText: now.UTC().Format(time.RFC3339Nano), Mode: mode,
		Outcome: results[0].Outcome, Status: results[0].Status}
	for _, res := range results {
		if res.Outcome == revalidation.Failed {
			last.Outcome, last.Status, last.Error = res.Outcome, res.Status, res.Error
			break
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	slot := rc.next
	rc.next = (rc.next + 1) % len(rc.ring)
	if old := rc.ring[slot]; old != "" {
		if e, ok := rc.byKey[old]; ok && e.slot == slot {
			delete(rc.byKey, old)
		}
	}
	rc.ring[slot] = key
	rc.byKey[key] = recentEntry{last: last, slot: slot}
}

// get returns the last revalidation of key, or nil.
func (rc *recent) get(key string) *lastRevalidation {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e, ok := rc.byKey[key]
	if !ok {
		return nil
	}
	return &e.last
}
