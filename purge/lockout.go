package purge

import (
	"sync"
	"time"
)

// Lockout policy (README.md#authentication): the lockoutLimit-th failure within lockoutWindow
// is still a 401; from then on the address gets 429 until fewer than
// lockoutLimit failures fall within the window.
const (
	lockoutLimit    = 11
	lockoutWindow   = time.Minute
	maxLockoutPeers = 100_000 // bounds the table: under 20 MiB when full
)

// lockout counts authentication failures per client address over a sliding
// window. Memory is bounded: an address keeps its last lockoutLimit failure
// times only, addresses whose failures have all expired are swept once per
// window, and the table never holds more than max addresses.
type lockout struct {
	max int // most addresses tracked

	mu    sync.Mutex         // guards peers and swept
	peers map[string][]int64 // address -> its latest failure times (Unix ns), oldest first, at most lockoutLimit
	swept time.Time          // last full sweep of expired addresses
}

func newLockout(maxPeers int) *lockout {
	return &lockout{max: maxPeers, peers: make(map[string][]int64)}
}

// check reports whether addr is locked out at now and, if so, how long until
// it is not: until the oldest failure that keeps the count at the limit
// leaves the window.
func (l *lockout) check(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.recentLocked(addr, now)
	if len(times) < lockoutLimit {
		return 0, false
	}
	return time.Duration(times[len(times)-lockoutLimit] + int64(lockoutWindow) - now.UnixNano()), true
}

// fail records a failure for addr at now.
func (l *lockout) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) >= lockoutWindow {
		l.sweepLocked(now)
	}
	times := l.recentLocked(addr, now)
	if times == nil && len(l.peers) >= l.max {
		l.sweepLocked(now)
		for victim := range l.peers { // still full: forget an arbitrary address
			if len(l.peers) < l.max {
				break
			}
			delete(l.peers, victim)
		}
	}
	times = append(times, now.UnixNano())
	if len(times) > lockoutLimit {
		times = append(times[:0], times[len(times)-lockoutLimit:]...)
	}
	l.peers[addr] = times
}

// recentLocked returns addr's failures still within the window at now,
// dropping the expired ones (and addr itself when none is left).
func (l *lockout) recentLocked(addr string, now time.Time) []int64 {
	times := l.peers[addr]
	i := 0
	for i < len(times) && expired(times[i], now) {
		i++
	}
	if i == len(times) {
		delete(l.peers, addr)
		return nil
	}
	if i > 0 {
		times = append(times[:0], times[i:]...)
		l.peers[addr] = times
	}
	return times
}

// sweepLocked forgets every address whose failures have all expired.
func (l *lockout) sweepLocked(now time.Time) {
	for addr, times := range l.peers {
		if expired(times[len(times)-1], now) {
			delete(l.peers, addr)
		}
	}
	l.swept = now
}

// expired reports whether a failure at t (Unix ns) no longer counts at now.
func expired(t int64, now time.Time) bool { return now.UnixNano()-t >= int64(lockoutWindow) }
