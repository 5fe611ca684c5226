package history

import (
	"errors"
	"fmt"
	"log/slog"
)

// OpenRemoteOnly is History without the embedded storage, for an
// aggregator whose history is read from an external TSDB (--history.url):
// Add only forwards the series by remote write (when
// opts.RemoteWriteURL is set; else it keeps nothing), QueryWith refuses
// (read with a RemoteReader instead), DeleteHost only forgets the host's
// cached names. Nothing is opened on disk.
func OpenRemoteOnly(opts Options) (*History, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.TopK > maxTopK:
		return nil, fmt.Errorf("history: top-k %d is above the maximum %d", opts.TopK, maxTopK)
	case opts.QueueSize < 0:
		return nil, errors.New("history: negative queue size")
	}
	if opts.TopK == 0 {
		opts.TopK = DefaultTopK
	}
	if opts.TopK < 0 {
		opts.TopK = 0
	}
	h := &History{topK: opts.TopK, names: newNameCache(), logger: opts.Logger}
	if opts.RemoteWriteURL != "" {
		u, err := parseRemoteURL(opts.RemoteWriteURL)
		if err != nil {
			return nil, err
		}
		h.remote = newRemoteWriter(u, remoteOptions{}, opts.Logger)
	}
	opts.Logger.Info("history: no embedded storage, series go out by remote write only", "top_k", opts.TopK,
		"remote_write", h.remote != nil)
	return h, nil
}
