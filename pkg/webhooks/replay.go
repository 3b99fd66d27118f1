package webhooks

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayGuard remembers the ids of accepted signed requests, so that a
// captured request cannot be accepted twice while its signature is fresh.
type ReplayGuard interface {
	// Claim records id until expires. It returns false when id was already
	// recorded and has not expired: the request is a replay.
	Claim(ctx context.Context, id string, expires time.Time) (bool, error)
}

// DefaultReplayCacheSize bounds the ids a ReplayCache holds.
const DefaultReplayCacheSize = 100_000

// ErrReplayCacheFull is returned when more fresh ids are held than the cache
// may: the request is refused rather than remembered in unbounded memory.
var ErrReplayCacheFull = errors.New("too many signed requests within the signature max age: the replay cache is full")

// ReplayCache is a ReplayGuard in memory: it protects one process only (one
// replica). Its zero value is not usable; use NewReplayCache.
type ReplayCache struct {
	mu   sync.Mutex
	ids  map[string]time.Time
	max  int
	now  func() time.Time
	next time.Time // next sweep of expired ids
}

// NewReplayCache returns a cache of at most size ids (DefaultReplayCacheSize
// when size <= 0).
func NewReplayCache(size int) *ReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &ReplayCache{ids: map[string]time.Time{}, max: size, now: time.Now}
}

// Claim implements ReplayGuard.
func (c *ReplayCache) Claim(_ context.Context, id string, expires time.Time) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.ids[id]; ok && now.Before(exp) {
		return false, nil
	}
	// Sweep at most once a second, or when full, so a claim stays O(1) on average.
	if now.After(c.next) || len(c.ids) >= c.max {
		for k, exp := range c.ids {
			if !now.Before(exp) {
				delete(c.ids, k)
			}
		}
		c.next = now.Add(time.Second)
	}
	if len(c.ids) >= c.max {
		return false, ErrReplayCacheFull
	}
	c.ids[id] = expires
	return true, nil
}
