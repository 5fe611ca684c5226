package api

// ForgetHost drops what the API keeps in memory about a host that was
// deleted: its push interval and the newest capture time the live stream
// announced. The server calls it for every host deletion it learns of
// (`hosts delete` runs in another process), so this state is bounded by
// the hosts that exist, which --hosts.max bounds.
func (a *API) ForgetHost(hostname string) {
	a.seen.forget(hostname)
	a.stream.forget(hostname)
	a.fleet.forget(hostname)
}

func (iv *intervals) forget(host string) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	delete(iv.hosts, host)
}

// len is the number of hosts with a learned interval (tests).
func (iv *intervals) len() int {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	return len(iv.hosts)
}

func (b *broker) forget(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.newest, host)
}

// newestLen is the number of hosts the broker remembers (tests).
func (b *broker) newestLen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.newest)
}
