package testutil

import (
	"bytes"
	"sync"
)

// LogBuffer collects a child process's stdout and stderr for failure
// messages. The two streams write from their own goroutines, hence the
// mutex; the cap keeps a chatty process from eating the machine's memory.
// The zero value is ready to use.
type LogBuffer struct {
	// Cap is the most bytes kept; later output is dropped. Zero means 4 MiB.
	Cap int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write keeps what fits under the cap and always reports success, so the
// process never sees a broken pipe because its log filled up.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.Cap
	if limit <= 0 {
		limit = 4 << 20
	}
	if room := limit - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String is the output kept so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
