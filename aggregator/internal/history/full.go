package history

// VictoriaMetrics turns its storage read-only when the free space under
// it falls below Options.MinFreeBytes (checked every second), and back
// when space returns. Its lib still accepts rows in read-only mode (the
// check lives in its app layer), and then panics in its own goroutine
// when flushing them to a full disk would fail: so while read-only, Add
// drops the rows and counts them, with one log line each way.

// readOnly reports whether the storage refuses writes now, logging a
// change of state.
func (h *History) readOnly() bool {
	if h.storage == nil {
		return false // remote write only: nothing on disk
	}
	ro := h.storage.IsReadOnly()
	if h.wasReadOnly.Load() != ro && h.wasReadOnly.CompareAndSwap(!ro, ro) {
		if ro {
			h.logger.Error("history storage is read-only: less free space than --storage.min-free-disk-space; its samples are dropped until space is freed",
				"path", h.dir)
		} else {
			h.logger.Info("history storage is writable again", "path", h.dir)
		}
	}
	return ro
}
