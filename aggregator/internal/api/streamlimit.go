package api

import "sync"

// clientSlots counts what each client (clientKey) holds open, e.g. live
// streams, so that one client cannot take every stream slot of the
// server. An entry lives only while its client holds a slot, so the map is
// bounded by the slots in use.
type clientSlots struct {
	mu   sync.Mutex
	max  int
	used map[string]int
}

func newClientSlots(max int) *clientSlots {
	return &clientSlots{max: max, used: map[string]int{}}
}

// acquire takes a slot for client; false when it holds max already.
func (c *clientSlots) acquire(client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used[client] >= c.max {
		return false
	}
	c.used[client]++
	return true
}

// release gives back a slot acquire took.
func (c *clientSlots) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.used[client]; n <= 1 {
		delete(c.used, client)
	} else {
		c.used[client] = n - 1
	}
}
