package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// maxDeletedSeries bounds the series one DeleteHost may match; a host's
// process series come and go with its processes, so this is generous.
const maxDeletedSeries = 1 << 30

// DeleteHost deletes every series of hostname, host and process series
// alike, and forgets the names cached for it: `hosts delete` promises
// that nothing of the host is left. Rows of the host still queued are
// written first, or they would create its series again afterwards.
// Samples already forwarded by remote write are the receiver's to delete.
// It returns how many series were deleted.
func (h *History) DeleteHost(hostname string) (n int, err error) {
	if err := h.Flush(30 * time.Second); err != nil {
		return 0, err
	}
	h.names.forget(hostname)
	if h.storage == nil {
		return 0, nil // remote only: the samples are the TSDB's
	}
	tfs := storage.NewTagFilters()
	if err := tfs.Add([]byte(LabelHostname), []byte(capLabelFor(LabelHostname, hostname)), false, false); err != nil {
		return 0, fmt.Errorf("history: filter: %w", err)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return 0, errors.New("history: closed")
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("history: delete series of %q: %v", hostname, r)
		}
	}()
	n, err = h.storage.DeleteSeries(nil, []*storage.TagFilters{tfs}, maxDeletedSeries)
	if err != nil {
		return 0, fmt.Errorf("history: delete series of %q: %w", hostname, err)
	}
	return n, nil
}

// forget drops hostname's cached names.
func (c *nameCache) forget(hostname string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.hosts, hostname)
}
